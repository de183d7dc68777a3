//! The built-in workflows of the demo products.
