#![allow(clippy::unwrap_used, clippy::string_slice)]
//! RFC 4231 §4 test cases for HMAC-SHA-256, against the crate's raw keyed hash (the prepared-state
//! implementation every purpose hash is built on). Test case 5 checks the output truncated to 128
//! bits, as the RFC does.

use portcullis_hash::raw_hmac_sha256;

fn h(s: &str) -> Vec<u8> {
    hex::decode(s).unwrap()
}

struct Case {
    name: &'static str,
    key: Vec<u8>,
    data: Vec<u8>,
    expected: &'static str,
}

fn cases() -> Vec<Case> {
    vec![
        Case {
            name: "4.2 test case 1",
            key: vec![0x0b; 20],
            data: b"Hi There".to_vec(),
            expected: "b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7",
        },
        Case {
            name: "4.3 test case 2 (key shorter than the output)",
            key: b"Jefe".to_vec(),
            data: b"what do ya want for nothing?".to_vec(),
            expected: "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843",
        },
        Case {
            name: "4.4 test case 3",
            key: vec![0xaa; 20],
            data: vec![0xdd; 50],
            expected: "773ea91e36800e46854db8ebd09181a72959098b3ef8c122d9635514ced565fe",
        },
        Case {
            name: "4.5 test case 4",
            key: h("0102030405060708090a0b0c0d0e0f10111213141516171819"),
            data: vec![0xcd; 50],
            expected: "82558a389a443c0ea4cc819899f2083a85f0faa3e578f8077a2e3ff46729665b",
        },
        Case {
            name: "4.6 test case 5 (truncated to 128 bits)",
            key: vec![0x0c; 20],
            data: b"Test With Truncation".to_vec(),
            expected: "a3b6167473100ee06e0c796c2955552b",
        },
        Case {
            name: "4.7 test case 6 (key larger than a block)",
            key: vec![0xaa; 131],
            data: b"Test Using Larger Than Block-Size Key - Hash Key First".to_vec(),
            expected: "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54",
        },
        Case {
            name: "4.8 test case 7 (key and data larger than a block)",
            key: vec![0xaa; 131],
            data: b"This is a test using a larger than block-size key and a larger than block-size data. The key needs to be hashed before being used by the HMAC algorithm.".to_vec(),
            expected: "9b09ffa71b942fcb27635fbcd5b0e944bfdc63644f0713938a7f51535c3a35e2",
        },
    ]
}

#[test]
fn rfc4231_hmac_sha256() {
    for c in cases() {
        let mac = hex::encode(raw_hmac_sha256(&c.key, &c.data));
        assert_eq!(&mac[..c.expected.len()], c.expected, "{}", c.name);
    }
}
