//! Password hashing: argon2id with a random salt and configured parameters, on a fixed pool of
//! threads of its own (never on the async workers, never more at once than configured).
//!
//! A pool of its own rather than the runtime's blocking threads: each hash takes its memory
//! (19 MiB by default) from the allocator of the thread that runs it, and glibc keeps what a
//! thread freed for that thread's next use. On the runtime's many blocking threads that
//! memory piled up per thread (a server under 50 concurrent sign-ins reached 488 MiB); on a
//! fixed pool it stays at about the configured concurrency times one hash.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Arc;

use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::{Algorithm, Argon2, Params, Version};
use cadre_domain::DomainError;
use serde::{Deserialize, Serialize};
use tokio::sync::{OnceCell, oneshot};

/// The argon2id cost parameters (the `[accounts.argon2]` table of the configuration). The
/// defaults are OWASP's first recommendation: 19 MiB, two passes, one lane.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Argon2Settings {
    /// Memory per hash, in KiB.
    pub memory_kib: u32,
    /// Passes over the memory.
    pub iterations: u32,
    /// Lanes.
    pub parallelism: u32,
}

impl Default for Argon2Settings {
    fn default() -> Self {
        Self {
            memory_kib: Params::DEFAULT_M_COST,
            iterations: Params::DEFAULT_T_COST,
            parallelism: Params::DEFAULT_P_COST,
        }
    }
}

/// What checking a password against a stored hash found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verified {
    /// The password is wrong (or the stored hash unreadable).
    Mismatch,
    /// The password is right; `rehash` when the hash was made with other parameters than the
    /// configured ones (or another algorithm), so it should be replaced.
    Match {
        /// Whether to store a new hash made with the configured parameters.
        rehash: bool,
    },
}

/// A hash or a check for the pool.
type Job = Box<dyn FnOnce(&Argon2<'static>) + Send>;

/// Hashes and checks passwords with the configured argon2id parameters on a pool of
/// `concurrency` threads; the others wait their turn. Clones share the pool, whose threads end
/// once the last clone is dropped.
#[derive(Clone)]
pub struct Passwords {
    params: Params,
    threads: usize,
    jobs: flume::Sender<Job>,
    /// A hash of nothing anyone knows, checked when there is no real hash to check, so that an
    /// unknown user takes as long as a wrong password.
    decoy: Arc<OnceCell<String>>,
}

impl std::fmt::Debug for Passwords {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Passwords")
            .field("params", &self.params)
            .field("threads", &self.threads)
            .field("queued", &self.jobs.len())
            .finish_non_exhaustive()
    }
}

impl Passwords {
    /// Hashing with `settings` on `concurrency` (at least one) threads of its own.
    pub fn new(settings: Argon2Settings, concurrency: usize) -> Result<Self, DomainError> {
        let params = Params::new(
            settings.memory_kib,
            settings.iterations,
            settings.parallelism,
            None,
        )
        .map_err(|error| DomainError::invalid("argon2", error.to_string()))?;
        let threads = concurrency.max(1);
        let (jobs, queue) = flume::unbounded::<Job>();
        for n in 0..threads {
            let queue = queue.clone();
            let argon2 = Argon2::new(Algorithm::Argon2id, Version::V0x13, params.clone());
            std::thread::Builder::new()
                .name(format!("cadre-argon2-{n}"))
                .spawn(move || {
                    // Ends when every sender is gone. A job that panics loses only itself:
                    // its caller sees its answer dropped.
                    for job in queue.iter() {
                        let _ = catch_unwind(AssertUnwindSafe(|| job(&argon2)));
                    }
                })
                .map_err(|error| failed("cannot start a hashing thread", error))?;
        }
        Ok(Self {
            params,
            threads,
            jobs,
            decoy: Arc::default(),
        })
    }

    /// Runs `work` with the hasher on the pool, once a thread is free.
    async fn run<T: Send + 'static>(
        &self,
        work: impl FnOnce(&Argon2<'static>) -> T + Send + 'static,
    ) -> Result<T, DomainError> {
        let (answer, answered) = oneshot::channel();
        self.jobs
            .send(Box::new(move |argon2| {
                let _ = answer.send(work(argon2));
            }))
            .map_err(|error| failed("the hashing pool is closed", error))?;
        answered
            .await
            .map_err(|error| failed("the hashing task failed", error))
    }

    /// The argon2id PHC string of `password`, with a fresh random salt.
    pub async fn hash(&self, password: &str) -> Result<String, DomainError> {
        let password = password.to_owned();
        self.run(move |argon2| {
            let mut salt = [0u8; 16];
            getrandom::fill(&mut salt).map_err(crate::tokens::no_randomness)?;
            let salt = SaltString::encode_b64(&salt)
                .map_err(|error| failed("cannot encode a salt", error))?;
            argon2
                .hash_password(password.as_bytes(), &salt)
                .map(|hash| hash.to_string())
                .map_err(|error| failed("cannot hash a password", error))
        })
        .await?
    }

    /// Checks `password` against the PHC string `hash`.
    pub async fn verify(&self, password: &str, hash: &str) -> Result<Verified, DomainError> {
        let password = password.to_owned();
        let hash = hash.to_owned();
        self.run(move |argon2| {
            let Ok(parsed) = PasswordHash::new(&hash) else {
                return Verified::Mismatch;
            };
            if argon2
                .verify_password(password.as_bytes(), &parsed)
                .is_err()
            {
                return Verified::Mismatch;
            }
            let current = parsed.algorithm.as_str() == Algorithm::Argon2id.ident().as_str()
                && Params::try_from(&parsed).is_ok_and(|params| {
                    params.m_cost() == argon2.params().m_cost()
                        && params.t_cost() == argon2.params().t_cost()
                        && params.p_cost() == argon2.params().p_cost()
                });
            Verified::Match { rehash: !current }
        })
        .await
    }

    /// Spends the time of a check when there is nothing to check (no such user, no password,
    /// sign-in refused), so that those cases cannot be told from a wrong password by timing.
    pub async fn verify_decoy(&self, password: &str) -> Result<(), DomainError> {
        let decoy = self
            .decoy
            .get_or_try_init(|| async {
                let (secret, _) = crate::tokens::new_secret()?;
                self.hash(&secret).await
            })
            .await?;
        self.verify(password, decoy).await.map(|_| ())
    }
}

/// The longest password accepted (hashing cost does not grow with it, but a request's does).
pub const MAX_PASSWORD_CHARS: usize = 1024;

/// What is wrong with `password` as a new password, if anything: fewer than `min_length` or
/// more than [`MAX_PASSWORD_CHARS`] characters, or easy to guess. Easy to guess is fewer than
/// 10^8 guesses by zxcvbn's estimate (its score 3): that refuses the commonly used passwords
/// (zxcvbn's lists hold some 30,000, from leaked password sets), keyboard walks, repeats and
/// dates, and passwords made of the words in `context` (the user's name and address, the
/// site's name). There are no rules on which characters a password has.
pub fn password_problem(password: &str, min_length: usize, context: &[&str]) -> Option<String> {
    let length = password.chars().count();
    if length < min_length {
        return Some(format!("must be at least {min_length} characters"));
    }
    if length > MAX_PASSWORD_CHARS {
        return Some(format!("must be at most {MAX_PASSWORD_CHARS} characters"));
    }
    if zxcvbn::zxcvbn(password, context).score() < zxcvbn::Score::Three {
        return Some(
            "is too easy to guess: a common password, a pattern, or words about you or this site; try a few unrelated words"
                .to_owned(),
        );
    }
    None
}

/// A salt or a hash that could not be made: an internal error, not a storage one.
fn failed(what: &str, error: impl std::fmt::Display) -> DomainError {
    DomainError::Internal(format!("{what}: {error}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cheap() -> Argon2Settings {
        Argon2Settings {
            memory_kib: 1024,
            iterations: 1,
            parallelism: 1,
        }
    }

    #[test]
    fn a_failed_hash_is_an_internal_error() {
        let error = failed(
            "cannot hash a password",
            argon2::password_hash::Error::Password,
        );
        assert!(matches!(error, DomainError::Internal(_)), "{error:?}");
    }

    #[test]
    fn unusable_parameters_are_refused() {
        let settings = Argon2Settings {
            memory_kib: 1,
            ..cheap()
        };
        assert!(Passwords::new(settings, 1).is_err());
    }

    #[tokio::test]
    async fn hashes_are_argon2id_salted_and_verify() {
        let passwords = Passwords::new(cheap(), 2).unwrap();
        let first = passwords.hash("correct horse battery").await.unwrap();
        let second = passwords.hash("correct horse battery").await.unwrap();
        assert!(
            first.starts_with("$argon2id$v=19$m=1024,t=1,p=1$"),
            "{first}"
        );
        assert_ne!(first, second, "a fresh salt each time");
        assert_eq!(
            passwords.verify("correct horse battery", &first).await,
            Ok(Verified::Match { rehash: false })
        );
        assert_eq!(
            passwords.verify("wrong horse battery", &first).await,
            Ok(Verified::Mismatch)
        );
        assert_eq!(
            passwords
                .verify("correct horse battery", "not a hash")
                .await,
            Ok(Verified::Mismatch)
        );
        passwords.verify_decoy("anything").await.unwrap();
    }

    #[tokio::test]
    async fn a_hash_made_with_other_parameters_asks_for_a_rehash() {
        let old = Passwords::new(cheap(), 1).unwrap();
        let hash = old.hash("correct horse battery").await.unwrap();
        let stronger = Passwords::new(
            Argon2Settings {
                iterations: 2,
                ..cheap()
            },
            1,
        )
        .unwrap();
        assert_eq!(
            stronger.verify("correct horse battery", &hash).await,
            Ok(Verified::Match { rehash: true })
        );
        assert_eq!(
            stronger.verify("wrong", &hash).await,
            Ok(Verified::Mismatch)
        );
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn hashing_runs_on_its_own_threads_never_more_than_configured_and_survives_a_panic() {
        let passwords = Passwords::new(cheap(), 2).unwrap();
        let running = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let jobs = (0..20).map(|_| {
            let running = running.clone();
            passwords.run(move |argon2| {
                let at_once = running.fetch_add(1, std::sync::atomic::Ordering::SeqCst) + 1;
                let mut out = [0u8; 32];
                argon2
                    .hash_password_into(b"password", b"somesalt", &mut out)
                    .unwrap();
                running.fetch_sub(1, std::sync::atomic::Ordering::SeqCst);
                (std::thread::current().name().map(str::to_owned), at_once)
            })
        });
        let done = futures_util::future::try_join_all(jobs).await.unwrap();
        let threads: std::collections::BTreeSet<_> =
            done.iter().map(|(name, _)| name.clone()).collect();
        assert!(
            threads.iter().all(|name| name
                .as_deref()
                .is_some_and(|name| name.starts_with("cadre-argon2-"))),
            "{threads:?}"
        );
        assert!(threads.len() <= 2, "{threads:?}");
        assert!(done.iter().all(|(_, at_once)| *at_once <= 2));

        let panicked = passwords.run(|_| panic!("a job that fails")).await;
        assert!(
            matches!(panicked, Err(DomainError::Internal(_))),
            "{panicked:?}"
        );
        passwords.hash("the pool still works").await.unwrap();
    }

    #[test]
    fn common_patterned_and_personal_passwords_are_refused_whatever_their_characters() {
        let context = ["ada", "ada@example.org", "cadre"];
        for weak in [
            "password1234",
            "qwertyuiop12",
            "1qaz2wsx3edc",
            "123456789012",
            "iloveyou1234",
            "adaadaadaada",
            "ada@example.org",
        ] {
            assert!(
                password_problem(weak, 12, &context)
                    .is_some_and(|problem| problem.contains("guess")),
                "{weak}"
            );
        }
        for fine in [
            "a long enough password",
            "correct horse battery staple",
            "ÄÖÜ ß 漢字 パスワード かな",
            &"x".repeat(5)
                .chars()
                .chain("7 unrelated words".chars())
                .collect::<String>(),
        ] {
            assert_eq!(password_problem(fine, 12, &context), None, "{fine}");
        }
        assert_eq!(
            password_problem("short", 12, &context).as_deref(),
            Some("must be at least 12 characters")
        );
        assert_eq!(
            password_problem(&"long words ".repeat(100), 12, &context).as_deref(),
            Some("must be at most 1024 characters")
        );
    }

    #[tokio::test]
    async fn a_password_is_checked_exactly_as_given_however_long() {
        let passwords = Passwords::new(cheap(), 1).unwrap();
        let given = " Correct Horse  Battery ";
        let hash = passwords.hash(given).await.unwrap();
        assert_eq!(
            passwords.verify(given, &hash).await,
            Ok(Verified::Match { rehash: false })
        );
        for other in [
            "Correct Horse  Battery",
            " correct horse  battery ",
            " Correct Horse Battery ",
        ] {
            assert_eq!(
                passwords.verify(other, &hash).await,
                Ok(Verified::Mismatch),
                "{other:?}: no trimming, case folding or collapsing"
            );
        }
        let long: String = "ein sehr langes Passwort "
            .repeat(50)
            .chars()
            .take(1024)
            .collect();
        let hash = passwords.hash(&long).await.unwrap();
        assert_eq!(
            passwords.verify(&long, &hash).await,
            Ok(Verified::Match { rehash: false })
        );
        let cut: String = long.chars().take(1023).collect();
        assert_eq!(
            passwords.verify(&cut, &hash).await,
            Ok(Verified::Mismatch),
            "no truncation"
        );
        assert_eq!(
            password_problem(&long, 12, &[]),
            None,
            "1,024 characters are allowed"
        );
    }
}
