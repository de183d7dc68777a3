//! Target credentials sealed and opened: only with the key and for the target they were sealed
//! for, never twice the same bytes, and any change detected.

use cadre_outbound::{SealError, SealingKey};
use uuid::Uuid;

const KEY: &str = "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f";

#[test]
fn a_sealed_secret_opens_with_its_key_for_its_target_only() {
    let key = SealingKey::from_hex(KEY).unwrap();
    let (target, other) = (Uuid::now_v7(), Uuid::now_v7());
    let sealed = key.seal(target, b"bearer-token").unwrap();
    assert!(
        !sealed.windows(12).any(|window| window == b"bearer-token"),
        "not in clear"
    );
    assert_eq!(key.open(target, &sealed).unwrap(), b"bearer-token");
    assert_ne!(
        key.seal(target, b"bearer-token").unwrap(),
        sealed,
        "a fresh nonce each time"
    );

    assert_eq!(
        key.open(other, &sealed),
        Err(SealError::Opening),
        "another target's"
    );
    let other_key = SealingKey::from_hex(&KEY.replace("00", "ff")).unwrap();
    assert_eq!(other_key.open(target, &sealed), Err(SealError::Opening));
    let mut changed = sealed.clone();
    *changed.last_mut().unwrap() ^= 1;
    assert_eq!(key.open(target, &changed), Err(SealError::Opening));
    assert_eq!(key.open(target, &sealed[..10]), Err(SealError::Opening));
}

#[test]
fn a_key_is_64_hexadecimal_digits_and_never_printed() {
    assert!(SealingKey::from_hex(&format!(" {KEY}\n")).is_ok());
    for bad in [
        "",
        "00",
        &KEY[..62],
        &format!("{KEY}00"),
        &KEY.replace('0', "g"),
    ] {
        assert_eq!(
            SealingKey::from_hex(bad).unwrap_err(),
            SealError::BadKey,
            "{bad}"
        );
    }
    let key = SealingKey::from_hex(KEY).unwrap();
    assert_eq!(format!("{key:?}"), "SealingKey(…)");
}
