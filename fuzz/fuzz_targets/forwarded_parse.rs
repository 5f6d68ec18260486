//! `X-Forwarded-For` and `Forwarded` on arbitrary bytes: never panics, and the resolved client
//! is never chosen by an untrusted party (an untrusted peer always gets itself; a malformed
//! header yields a trusted hop, never a fresh address).
#![no_main]

use std::net::IpAddr;

use libfuzzer_sys::fuzz_target;
use portcullis_ratelimit::{
    ClientIpResolver, ForwardedHeader, IpSource, TrustedProxies, parse_forwarded,
    parse_x_forwarded_for,
};

fuzz_target!(|data: &[u8]| {
    // Split the input into several header lines at 0x00 bytes.
    let lines: Vec<&[u8]> = data.split(|b| *b == 0).collect();
    for line in &lines {
        let _ = parse_x_forwarded_for(line);
        let _ = parse_forwarded(line);
    }
    let trusted = TrustedProxies::parse(["10.0.0.0/8", "2001:db8::/32"]).unwrap();
    let proxy: IpAddr = "10.1.2.3".parse().unwrap();
    let stranger: IpAddr = "198.51.100.7".parse().unwrap();
    for header in [ForwardedHeader::XForwardedFor, ForwardedHeader::Forwarded] {
        let r = ClientIpResolver::behind_proxies(trusted.clone(), header);
        let direct = r.resolve(stranger, lines.iter().copied());
        assert_eq!((direct.addr, direct.source), (stranger, IpSource::Peer));
        let via = r.resolve(proxy, lines.iter().copied());
        match via.source {
            IpSource::Peer => assert_eq!(via.addr, proxy),
            IpSource::NearestTrustedHop => assert!(trusted.contains(via.addr)),
            IpSource::Forwarded => assert!(!trusted.contains(via.addr)),
            _ => {}
        }
        let key = r.key(&via);
        assert!(!key.is_empty() && key.len() <= 43);
    }
});
