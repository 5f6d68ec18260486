//! The client's IP address, as a key nobody can choose for themselves.
//!
//! The deployment this crate replaces keyed its limiter by the first `X-Forwarded-For` entry,
//! which is whatever the client wrote there. Here:
//!
//! - By default the key is the **socket peer**; forwarding headers are ignored.
//! - Behind proxies, `X-Forwarded-For` or `Forwarded` (one of them, chosen by the operator) is
//!   read **only when the peer is a trusted proxy**, from right to left (each proxy appends the
//!   address it received from), skipping trusted proxies: the client is the right-most address
//!   that is not one. Entries left of it were written by the client and are never read.
//! - A malformed, obfuscated or `unknown` entry met on that walk stops it: the key becomes the
//!   nearest trusted hop (the last address that was verified), never something the client wrote.
//!   So a malformed header never panics and never grants a fresh key.
//! - IPv6 clients are keyed by their /64 by default, since one subscriber commonly holds a whole
//!   /64 and could otherwise rotate through 2^64 keys.

use std::fmt;
use std::net::{IpAddr, Ipv6Addr, SocketAddr};

use ipnet::IpNet;

/// Default IPv6 prefix length for keys: /64. Source: RFC 6177 §2 and RFC 7421 — a /64 is the
/// smallest block routinely assigned to a subscriber's link, so addresses inside one /64 are best
/// treated as one client.
pub const DEFAULT_IPV6_PREFIX: u8 = 64;

/// The most forwarding entries examined per request (the right-most ones). Source: no real chain
/// of proxies is this deep; the bound keeps the work per request constant.
pub const MAX_FORWARDED_HOPS: usize = 32;

/// Why a trusted-proxy list is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ClientIpError {
    /// An entry is neither an IP address nor a CIDR block.
    #[error("not an IP address or CIDR block: {0:?}")]
    Cidr(String),
}

/// The proxies whose forwarding headers are believed: a list of CIDR blocks.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TrustedProxies {
    nets: Vec<IpNet>,
}

impl TrustedProxies {
    /// No trusted proxy: forwarding headers are never read.
    #[must_use]
    pub const fn none() -> Self {
        Self { nets: Vec::new() }
    }

    /// Parse CIDR blocks (`10.0.0.0/8`, `2001:db8::/32`) or single addresses (`192.0.2.7`).
    ///
    /// # Errors
    /// [`ClientIpError::Cidr`] naming the first entry that is neither.
    pub fn parse<I, S>(entries: I) -> Result<Self, ClientIpError>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        let nets = entries
            .into_iter()
            .map(|e| {
                let e = e.as_ref().trim();
                e.parse::<IpNet>()
                    .or_else(|_| e.parse::<IpAddr>().map(|ip| IpNet::from(ip.to_canonical())))
                    .map(|n| n.trunc())
                    .map_err(|_| ClientIpError::Cidr(e.to_owned()))
            })
            .collect::<Result<_, _>>()?;
        Ok(Self { nets })
    }

    /// Whether `ip` (IPv4-mapped IPv6 counts as IPv4) is inside a trusted block.
    #[must_use]
    pub fn contains(&self, ip: IpAddr) -> bool {
        let ip = ip.to_canonical();
        self.nets.iter().any(|n| n.contains(&ip))
    }

    /// Whether the list is empty.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.nets.is_empty()
    }
}

/// Which forwarding header the trusted proxies write.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum ForwardedHeader {
    /// `X-Forwarded-For: client, proxy1, proxy2`.
    #[default]
    XForwardedFor,
    /// RFC 7239 `Forwarded: for=client, for="[2001:db8::1]:4711"`.
    Forwarded,
}

impl ForwardedHeader {
    /// The header's name, lower case.
    #[must_use]
    pub const fn name(self) -> &'static str {
        match self {
            Self::XForwardedFor => "x-forwarded-for",
            Self::Forwarded => "forwarded",
        }
    }
}

/// Where a [`ClientIp`] came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum IpSource {
    /// The socket peer (no trusted proxy in between, or no forwarding header).
    Peer,
    /// A forwarding header entry appended by a trusted proxy.
    Forwarded,
    /// The forwarding header was malformed, obfuscated or `unknown` where it mattered; the
    /// address is the nearest trusted hop.
    NearestTrustedHop,
}

/// A resolved client address.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClientIp {
    /// The address (IPv4-mapped IPv6 addresses are given as IPv4).
    pub addr: IpAddr,
    /// Where it came from.
    pub source: IpSource,
}

/// Turns a socket peer and forwarding headers into a client address and a rate-limit key.
///
/// ```
/// use std::net::IpAddr;
/// use portcullis_ratelimit::{ClientIpResolver, ForwardedHeader, IpSource, TrustedProxies};
///
/// let resolver = ClientIpResolver::behind_proxies(
///     TrustedProxies::parse(["10.0.0.0/8"])?,
///     ForwardedHeader::XForwardedFor,
/// );
/// let proxy: IpAddr = "10.0.0.5".parse()?;
/// let stranger: IpAddr = "198.51.100.9".parse()?;
///
/// // Through the proxy: the right-most untrusted entry; what the client wrote on the left is ignored.
/// let ip = resolver.resolve(proxy, [&b"1.1.1.1, 203.0.113.7, 10.0.0.3"[..]]);
/// assert_eq!(ip.addr.to_string(), "203.0.113.7");
/// assert_eq!(ip.source, IpSource::Forwarded);
///
/// // Straight from an untrusted peer: the header is ignored.
/// let ip = resolver.resolve(stranger, [&b"203.0.113.7"[..]]);
/// assert_eq!(ip.addr, stranger);
///
/// // Malformed where it matters: the nearest trusted hop, never a fresh key.
/// let ip = resolver.resolve(proxy, [&b"203.0.113.7, not-an-ip"[..]]);
/// assert_eq!((ip.addr, ip.source), (proxy, IpSource::NearestTrustedHop));
///
/// // IPv6 clients are keyed by /64.
/// let v6: IpAddr = "2001:db8:1:2:aaaa:bbbb:cccc:dddd".parse()?;
/// assert_eq!(resolver.key(&resolver.resolve(v6, [])), "2001:db8:1:2::/64");
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientIpResolver {
    trusted: TrustedProxies,
    header: ForwardedHeader,
    ipv6_prefix: u8,
}

impl Default for ClientIpResolver {
    fn default() -> Self {
        Self::peer_only()
    }
}

impl ClientIpResolver {
    /// The socket peer only; forwarding headers are never read.
    #[must_use]
    pub const fn peer_only() -> Self {
        Self {
            trusted: TrustedProxies::none(),
            header: ForwardedHeader::XForwardedFor,
            ipv6_prefix: DEFAULT_IPV6_PREFIX,
        }
    }

    /// Read `header` when the peer is in `trusted`.
    #[must_use]
    pub const fn behind_proxies(trusted: TrustedProxies, header: ForwardedHeader) -> Self {
        Self {
            trusted,
            header,
            ipv6_prefix: DEFAULT_IPV6_PREFIX,
        }
    }

    /// Key IPv6 clients by this prefix length (default [`DEFAULT_IPV6_PREFIX`]; 128 keys each
    /// address on its own; values above 128 mean 128).
    #[must_use]
    pub fn ipv6_prefix(mut self, bits: u8) -> Self {
        self.ipv6_prefix = bits.min(128);
        self
    }

    /// The forwarding header this resolver reads.
    #[must_use]
    pub const fn header(&self) -> ForwardedHeader {
        self.header
    }

    /// The trusted proxies.
    #[must_use]
    pub const fn trusted(&self) -> &TrustedProxies {
        &self.trusted
    }

    /// Resolve the client of a connection from `peer` and the values of the configured
    /// forwarding header (each header line, in the order received).
    pub fn resolve<'a, I>(&self, peer: IpAddr, header_values: I) -> ClientIp
    where
        I: IntoIterator<Item = &'a [u8]>,
    {
        let peer = peer.to_canonical();
        let from_peer = ClientIp {
            addr: peer,
            source: IpSource::Peer,
        };
        if !self.trusted.contains(peer) {
            return from_peer;
        }
        let mut hops: Vec<Option<IpAddr>> = Vec::new();
        for value in header_values {
            match self.header {
                ForwardedHeader::XForwardedFor => parse_x_forwarded_for_into(value, &mut hops),
                ForwardedHeader::Forwarded => parse_forwarded_into(value, &mut hops),
            }
            // Keep only the right-most hops; remember that older ones were cut off.
            if hops.len() > 2 * MAX_FORWARDED_HOPS {
                hops.drain(..hops.len() - MAX_FORWARDED_HOPS);
            }
        }
        if hops.is_empty() {
            return from_peer;
        }
        let mut nearest = peer;
        for hop in hops.iter().rev().take(MAX_FORWARDED_HOPS) {
            match hop.map(|ip| ip.to_canonical()) {
                Some(ip) if self.trusted.contains(ip) => nearest = ip,
                Some(ip) => {
                    return ClientIp {
                        addr: ip,
                        source: IpSource::Forwarded,
                    };
                }
                None => break,
            }
        }
        // A malformed entry, or nothing but trusted proxies within reach.
        ClientIp {
            addr: nearest,
            source: IpSource::NearestTrustedHop,
        }
    }

    /// The rate-limit key of a client: the IPv4 address, or the IPv6 address's prefix
    /// (`2001:db8:1:2::/64`).
    #[must_use]
    pub fn key(&self, ip: &ClientIp) -> String {
        key_for(ip.addr, self.ipv6_prefix)
    }

    /// [`resolve`](Self::resolve) with the forwarding header read from `headers`.
    #[cfg(feature = "http")]
    pub fn resolve_headers(&self, peer: IpAddr, headers: &http::HeaderMap) -> ClientIp {
        self.resolve(
            peer,
            headers
                .get_all(self.header.name())
                .iter()
                .map(http::HeaderValue::as_bytes),
        )
    }
}

fn key_for(addr: IpAddr, ipv6_prefix: u8) -> String {
    match addr.to_canonical() {
        IpAddr::V4(v4) => v4.to_string(),
        IpAddr::V6(v6) if ipv6_prefix >= 128 => v6.to_string(),
        IpAddr::V6(v6) => {
            let mask = u128::MAX
                .checked_shl(u32::from(128 - ipv6_prefix))
                .unwrap_or(0);
            let net = Ipv6Addr::from(u128::from(v6) & mask);
            format!("{net}/{ipv6_prefix}")
        }
    }
}

/// One node as proxies write it: an address, optionally with a port, IPv6 optionally in
/// brackets. Anything else (`unknown`, obfuscated identifiers, zone ids, garbage) is `None`.
fn parse_node(s: &str) -> Option<IpAddr> {
    let s = s.trim_matches([' ', '\t']);
    if let Ok(ip) = s.parse::<IpAddr>() {
        return Some(ip);
    }
    if let Ok(sa) = s.parse::<SocketAddr>() {
        return Some(sa.ip());
    }
    s.strip_prefix('[')
        .and_then(|r| r.strip_suffix(']'))
        .and_then(|inner| inner.parse::<Ipv6Addr>().ok())
        .map(IpAddr::V6)
}

fn parse_x_forwarded_for_into(value: &[u8], out: &mut Vec<Option<IpAddr>>) {
    match std::str::from_utf8(value) {
        Ok(s) => out.extend(s.split(',').map(parse_node)),
        Err(_) => out.push(None),
    }
}

/// The entries of one `X-Forwarded-For` value, left to right; `None` for an entry that is not an
/// address.
#[must_use]
pub fn parse_x_forwarded_for(value: &[u8]) -> Vec<Option<IpAddr>> {
    let mut out = Vec::new();
    parse_x_forwarded_for_into(value, &mut out);
    out
}

/// The `for` nodes of one RFC 7239 `Forwarded` value, one per element, left to right; `None` for
/// an element without exactly one `for`, or whose node is not an address (`unknown`, `_hidden`).
/// A syntax error ends the list with a `None` (what follows it cannot be attributed).
#[must_use]
pub fn parse_forwarded(value: &[u8]) -> Vec<Option<IpAddr>> {
    let mut out = Vec::new();
    parse_forwarded_into(value, &mut out);
    out
}

/// RFC 7230 `tchar`.
const fn is_tchar(b: u8) -> bool {
    b.is_ascii_alphanumeric()
        || matches!(
            b,
            b'!' | b'#'
                | b'$'
                | b'%'
                | b'&'
                | b'\''
                | b'*'
                | b'+'
                | b'-'
                | b'.'
                | b'^'
                | b'_'
                | b'`'
                | b'|'
                | b'~'
        )
}

/// A small cursor over the bytes of a `Forwarded` value.
struct Cursor<'a> {
    rest: &'a [u8],
}

impl<'a> Cursor<'a> {
    fn peek(&self) -> Option<u8> {
        self.rest.first().copied()
    }

    fn bump(&mut self) {
        self.rest = self.rest.get(1..).unwrap_or_default();
    }

    fn skip_ows(&mut self) {
        while matches!(self.peek(), Some(b' ' | b'\t')) {
            self.bump();
        }
    }

    fn token(&mut self) -> &'a [u8] {
        let n = self.rest.iter().take_while(|b| is_tchar(**b)).count();
        let (t, rest) = self.rest.split_at(n);
        self.rest = rest;
        t
    }

    /// A quoted-string (the cursor is on the opening quote); `None` if unterminated or holding a
    /// control character.
    fn quoted(&mut self) -> Option<Vec<u8>> {
        self.bump();
        let mut out = Vec::new();
        loop {
            let b = self.peek()?;
            self.bump();
            match b {
                b'"' => return Some(out),
                b'\\' => {
                    let escaped = self.peek()?;
                    self.bump();
                    if escaped < 0x20 && escaped != b'\t' || escaped == 0x7f {
                        return None;
                    }
                    out.push(escaped);
                }
                b if b < 0x20 && b != b'\t' || b == 0x7f => return None,
                b => out.push(b),
            }
        }
    }
}

fn parse_forwarded_into(value: &[u8], out: &mut Vec<Option<IpAddr>>) {
    let mut c = Cursor { rest: value };
    loop {
        // One forwarded-element: [pair] *( ";" [pair] ).
        let mut node: Option<Option<IpAddr>> = None;
        let mut fors = 0usize;
        loop {
            c.skip_ows();
            match c.peek() {
                None | Some(b',') => break,
                Some(b';') => {
                    c.bump();
                    continue;
                }
                Some(_) => {}
            }
            let name = c.token();
            if name.is_empty() || c.peek() != Some(b'=') {
                out.push(None);
                return;
            }
            c.bump();
            let value = if c.peek() == Some(b'"') {
                match c.quoted() {
                    Some(v) => v,
                    None => {
                        out.push(None);
                        return;
                    }
                }
            } else {
                let t = c.token();
                if t.is_empty() {
                    out.push(None);
                    return;
                }
                t.to_vec()
            };
            if name.eq_ignore_ascii_case(b"for") {
                fors += 1;
                node = Some(std::str::from_utf8(&value).ok().and_then(parse_node));
            }
            c.skip_ows();
            match c.peek() {
                Some(b';') => c.bump(),
                None | Some(b',') => {}
                Some(_) => {
                    out.push(None);
                    return;
                }
            }
        }
        out.push(if fors == 1 { node.flatten() } else { None });
        match c.peek() {
            Some(b',') => c.bump(),
            _ => return,
        }
    }
}

impl fmt::Display for ClientIp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.addr.fmt(f)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    fn behind(header: ForwardedHeader) -> ClientIpResolver {
        ClientIpResolver::behind_proxies(
            TrustedProxies::parse(["10.0.0.0/8", "2001:db8:ffff::/48", "192.0.2.1"]).unwrap(),
            header,
        )
    }

    #[test]
    fn trusted_proxies_parse() {
        let t = TrustedProxies::parse([
            "10.0.0.0/8",
            " 192.0.2.1 ",
            "::1",
            "2001:db8::/32",
            "10.1.2.3/8",
        ])
        .unwrap();
        assert!(t.contains(ip("10.200.0.1")));
        assert!(t.contains(ip("::ffff:10.0.0.1")));
        assert!(t.contains(ip("192.0.2.1")) && !t.contains(ip("192.0.2.2")));
        assert!(t.contains(ip("::1")) && t.contains(ip("2001:db8:5::1")));
        assert!(!t.contains(ip("11.0.0.1")));
        assert_eq!(
            TrustedProxies::parse(["10.0.0.0/33"]),
            Err(ClientIpError::Cidr("10.0.0.0/33".into()))
        );
        assert!(TrustedProxies::parse(["example.com"]).is_err());
        assert!(TrustedProxies::none().is_empty());
    }

    #[test]
    fn peer_only_ignores_headers() {
        let r = ClientIpResolver::peer_only();
        let got = r.resolve(ip("10.0.0.1"), [&b"203.0.113.9"[..]]);
        assert_eq!((got.addr, got.source), (ip("10.0.0.1"), IpSource::Peer));
    }

    // The spoofing test the issue asks for: a client that talks to us directly cannot pick its
    // key with X-Forwarded-For.
    #[test]
    fn spoofed_x_forwarded_for_from_untrusted_peer_is_ignored() {
        let r = behind(ForwardedHeader::XForwardedFor);
        for spoof in [
            &b"1.2.3.4"[..],
            b"10.0.0.1",
            b"garbage",
            b"",
            b"1.2.3.4, 5.6.7.8",
        ] {
            let got = r.resolve(ip("198.51.100.20"), [spoof]);
            assert_eq!(
                (got.addr, got.source),
                (ip("198.51.100.20"), IpSource::Peer)
            );
        }
    }

    #[test]
    fn right_most_untrusted_entry_wins() {
        let r = behind(ForwardedHeader::XForwardedFor);
        let proxy = ip("10.0.0.2");
        let got = r.resolve(proxy, [&b"6.6.6.6, 203.0.113.7, 10.9.9.9"[..]]);
        assert_eq!(
            (got.addr, got.source),
            (ip("203.0.113.7"), IpSource::Forwarded)
        );
        // several header lines are one list, in order
        let got = r.resolve(proxy, [&b"6.6.6.6"[..], b"203.0.113.8", b"10.1.1.1"]);
        assert_eq!(got.addr, ip("203.0.113.8"));
        // ports and brackets
        assert_eq!(
            r.resolve(proxy, [&b"203.0.113.7:5555"[..]]).addr,
            ip("203.0.113.7")
        );
        assert_eq!(
            r.resolve(proxy, [&b"[2001:db8::7]:443"[..]]).addr,
            ip("2001:db8::7")
        );
        assert_eq!(
            r.resolve(proxy, [&b"[2001:db8::7]"[..]]).addr,
            ip("2001:db8::7")
        );
        assert_eq!(
            r.resolve(proxy, [&b" 2001:db8::8 "[..]]).addr,
            ip("2001:db8::8")
        );
        // mapped addresses are IPv4
        assert_eq!(
            r.resolve(ip("::ffff:10.0.0.2"), [&b"::ffff:203.0.113.7"[..]])
                .addr,
            ip("203.0.113.7")
        );
        // no header: the peer
        assert_eq!(r.resolve(proxy, []).source, IpSource::Peer);
    }

    #[test]
    fn malformed_entries_never_grant_a_fresh_key() {
        let r = behind(ForwardedHeader::XForwardedFor);
        let proxy = ip("10.0.0.2");
        for bad in [
            &b"not-an-ip"[..],
            b"",
            b" , ",
            b"203.0.113.7,",
            b"unknown",
            b"fe80::1%eth0",
            b"\xff\xfe",
            b"1.2.3.4.5",
            b"999.1.1.1",
        ] {
            let got = r.resolve(proxy, [bad]);
            assert_eq!(
                (got.addr, got.source),
                (proxy, IpSource::NearestTrustedHop),
                "{bad:?}"
            );
        }
        // the walk stops at the first bad entry from the right, at the nearest trusted hop
        let got = r.resolve(proxy, [&b"203.0.113.7, junk, 10.3.3.3"[..]]);
        assert_eq!(
            (got.addr, got.source),
            (ip("10.3.3.3"), IpSource::NearestTrustedHop)
        );
        // junk left of the client does not matter
        let got = r.resolve(proxy, [&b"junk, 203.0.113.7"[..]]);
        assert_eq!(got.addr, ip("203.0.113.7"));
        // all trusted: the left-most trusted hop
        let got = r.resolve(proxy, [&b"10.0.0.9, 10.0.0.8"[..]]);
        assert_eq!(
            (got.addr, got.source),
            (ip("10.0.0.9"), IpSource::NearestTrustedHop)
        );
    }

    #[test]
    fn deep_chains_are_bounded() {
        let r = behind(ForwardedHeader::XForwardedFor);
        let chain = std::iter::repeat_n("10.0.0.1", 1000)
            .collect::<Vec<_>>()
            .join(",");
        let lines: Vec<&[u8]> = vec![b"203.0.113.7", chain.as_bytes()];
        let got = r.resolve(ip("10.0.0.2"), lines);
        assert_eq!(got.source, IpSource::NearestTrustedHop);
        assert_eq!(got.addr, ip("10.0.0.1"));
    }

    #[test]
    fn forwarded_header() {
        let r = behind(ForwardedHeader::Forwarded);
        let proxy = ip("10.0.0.2");
        let v =
            br#"for=6.6.6.6;proto=https, For="[2001:db8:cafe::17]:4711";by=10.0.0.2, for=10.0.0.7"#;
        let got = r.resolve(proxy, [&v[..]]);
        assert_eq!(
            (got.addr, got.source),
            (ip("2001:db8:cafe::17"), IpSource::Forwarded)
        );
        assert_eq!(
            parse_forwarded(
                br#"for=192.0.2.60;proto=http;by=203.0.113.43, for="198.51.100.17:80""#
            ),
            vec![Some(ip("192.0.2.60")), Some(ip("198.51.100.17"))]
        );
        assert_eq!(
            parse_forwarded(b"for=unknown, for=_hidden, proto=http"),
            vec![None, None, None]
        );
        assert_eq!(parse_forwarded(b"for=1.2.3.4;for=5.6.7.8"), vec![None]);
        assert_eq!(parse_forwarded(br#"for="1.2.3.4"#), vec![None]);
        assert_eq!(
            parse_forwarded(br#"for="\1.2.3.4""#),
            vec![Some(ip("1.2.3.4"))]
        );
        assert_eq!(parse_forwarded(b"for=1.2.3.4 x"), vec![None]);
        assert_eq!(
            parse_forwarded(b";;for=1.2.3.4;;"),
            vec![Some(ip("1.2.3.4"))]
        );
        // an unterminated quote swallows what follows: the nearest trusted hop
        let got = r.resolve(proxy, [&br#"for="oops, for=203.0.113.9"#[..]]);
        assert_eq!((got.addr, got.source), (proxy, IpSource::NearestTrustedHop));
        // the X-Forwarded-For header is not read when Forwarded is configured
        assert_eq!(r.header().name(), "forwarded");
    }

    #[test]
    fn keys() {
        let r = ClientIpResolver::peer_only();
        let k = |s: &str| r.key(&r.resolve(ip(s), []));
        assert_eq!(k("203.0.113.7"), "203.0.113.7");
        assert_eq!(k("::ffff:203.0.113.7"), "203.0.113.7");
        assert_eq!(k("2001:db8:1:2:3:4:5:6"), "2001:db8:1:2::/64");
        assert_eq!(k("2001:db8:1:2:ffff::1"), k("2001:db8:1:2::9"));
        let r128 = ClientIpResolver::peer_only().ipv6_prefix(200);
        assert_eq!(
            r128.key(&r128.resolve(ip("2001:db8::1"), [])),
            "2001:db8::1"
        );
        let r0 = ClientIpResolver::peer_only().ipv6_prefix(0);
        assert_eq!(r0.key(&r0.resolve(ip("2001:db8::1"), [])), "::/0");
    }

    proptest! {
        // Whatever the header says, the result is the peer, an address the trusted proxies
        // appended, or the nearest trusted hop; an untrusted peer always gets itself.
        #[test]
        fn resolution_is_never_chosen_by_an_untrusted_party(
            value in proptest::collection::vec(any::<u8>(), 0..80),
            trusted_peer in any::<bool>(),
            forwarded in any::<bool>(),
        ) {
            let header = if forwarded { ForwardedHeader::Forwarded } else { ForwardedHeader::XForwardedFor };
            let r = behind(header);
            let peer = if trusted_peer { ip("10.0.0.2") } else { ip("198.51.100.1") };
            let got = r.resolve(peer, [&value[..]]);
            if !trusted_peer {
                prop_assert_eq!(got.addr, peer);
            }
            if got.source == IpSource::NearestTrustedHop {
                prop_assert!(r.trusted().contains(got.addr));
            }
        }

        #[test]
        fn well_formed_chains_resolve_to_the_right_most_untrusted(
            client in any::<u32>(), hops in 0usize..5, spoof in any::<u32>()
        ) {
            let client = IpAddr::from(std::net::Ipv4Addr::from(client));
            prop_assume!(!behind(ForwardedHeader::XForwardedFor).trusted().contains(client));
            let mut parts = vec![std::net::Ipv4Addr::from(spoof).to_string(), client.to_string()];
            parts.extend((0..hops).map(|i| format!("10.0.0.{i}")));
            let xff = parts.join(", ");
            let got = behind(ForwardedHeader::XForwardedFor).resolve(ip("10.0.0.2"), [xff.as_bytes()]);
            prop_assert_eq!((got.addr, got.source), (client, IpSource::Forwarded));
            let fwd = parts.iter().map(|p| format!("for={p}")).collect::<Vec<_>>().join(", ");
            let got = behind(ForwardedHeader::Forwarded).resolve(ip("10.0.0.2"), [fwd.as_bytes()]);
            prop_assert_eq!((got.addr, got.source), (client, IpSource::Forwarded));
        }
    }
}
