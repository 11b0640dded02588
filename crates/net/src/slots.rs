//! Who gets a connection slot: a pure decision over the peers already admitted.
//!
//! Identities are free, addresses are not: a peer that is neither reserved (a configured
//! validator, a bootstrap or `add_peer` address) nor dialled by us competes for inbound slots,
//! at most [`SlotLimits::per_ip`] from one IP address and [`SlotLimits::per_subnet`] from one
//! subnet (IPv4 /24, IPv6 /48). Inbound peers never take the slots kept for our own outbound
//! dials, and reserved peers are admitted on top of every cap, so that throwaway identities can
//! fill the table without cutting a node off from the validators it needs.

use std::net::IpAddr;

/// How a connected (or candidate) peer counts against the caps.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Class {
    /// A configured validator, or a peer at a bootstrap or `add_peer` address: never refused
    /// for lack of room.
    Reserved,
    /// Dialled by us at an address learnt from peer exchange.
    Outbound,
    /// Dialled us.
    Inbound,
}

/// The caps on peers that are not reserved.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct SlotLimits {
    /// Most peers that are not reserved.
    pub(crate) max_peers: usize,
    /// Most of them that dialled us (the rest is kept for our own dials).
    pub(crate) max_inbound: usize,
    /// Most inbound peers from one IP address.
    pub(crate) per_ip: usize,
    /// Most inbound peers from one subnet.
    pub(crate) per_subnet: usize,
}

impl SlotLimits {
    /// Inbound peers get what the outbound target leaves of `max_peers` (but at least half).
    pub(crate) fn new(
        max_peers: usize,
        target_outbound: usize,
        per_ip: usize,
        per_subnet: usize,
    ) -> SlotLimits {
        let kept_for_outbound = target_outbound.min(max_peers / 2);
        SlotLimits {
            max_peers,
            max_inbound: max_peers - kept_for_outbound,
            per_ip: per_ip.max(1),
            per_subnet: per_subnet.max(1),
        }
    }
}

/// The subnet an address counts against, as its first address: the first 24 bits of IPv4 (or
/// IPv4-mapped IPv6), the first 48 of IPv6.
pub(crate) fn subnet(ip: IpAddr) -> IpAddr {
    match ip.to_canonical() {
        IpAddr::V4(ip) => IpAddr::from(std::net::Ipv4Addr::from(u32::from(ip) & 0xffff_ff00)),
        IpAddr::V6(ip) => {
            IpAddr::from(std::net::Ipv6Addr::from(u128::from(ip) & !((1u128 << 80) - 1)))
        }
    }
}

/// Whether a peer of `class` connecting from `ip` may be admitted next to `admitted` (the IP
/// and class of every peer already in the table); the reason when not.
pub(crate) fn admit(
    limits: &SlotLimits,
    admitted: impl IntoIterator<Item = (IpAddr, Class)> + Clone,
    ip: IpAddr,
    class: Class,
) -> Result<(), &'static str> {
    if class == Class::Reserved {
        return Ok(());
    }
    let others = || admitted.clone().into_iter().filter(|(_, class)| *class != Class::Reserved);
    if others().count() >= limits.max_peers {
        return Err("peer table full");
    }
    if class == Class::Outbound {
        return Ok(());
    }
    let inbound = || others().filter(|(_, class)| *class == Class::Inbound);
    if inbound().count() >= limits.max_inbound {
        return Err("inbound slots full");
    }
    let ip = ip.to_canonical();
    if inbound().filter(|(other, _)| other.to_canonical() == ip).count() >= limits.per_ip {
        return Err("too many peers from this address");
    }
    let net = subnet(ip);
    if inbound().filter(|(other, _)| subnet(*other) == net).count() >= limits.per_subnet {
        return Err("too many peers from this subnet");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(text: &str) -> IpAddr {
        text.parse().expect("ip")
    }

    const LIMITS: SlotLimits =
        SlotLimits { max_peers: 10, max_inbound: 8, per_ip: 2, per_subnet: 3 };

    #[test]
    fn inbound_peers_are_capped_per_address_and_subnet() {
        let one = vec![(ip("192.0.2.1"), Class::Inbound); 2];
        assert_eq!(
            admit(&LIMITS, one.clone(), ip("192.0.2.1"), Class::Inbound),
            Err("too many peers from this address")
        );
        // IPv4-mapped IPv6 is the same address.
        assert!(admit(&LIMITS, one.clone(), ip("::ffff:192.0.2.1"), Class::Inbound).is_err());
        assert_eq!(admit(&LIMITS, one.clone(), ip("192.0.2.2"), Class::Inbound), Ok(()));
        let mut three = one;
        three.push((ip("192.0.2.2"), Class::Inbound));
        assert_eq!(
            admit(&LIMITS, three.clone(), ip("192.0.2.3"), Class::Inbound),
            Err("too many peers from this subnet")
        );
        assert_eq!(admit(&LIMITS, three.clone(), ip("192.0.3.1"), Class::Inbound), Ok(()));
        // Our own dials and reserved peers are not held to the inbound caps.
        assert_eq!(admit(&LIMITS, three.clone(), ip("192.0.2.1"), Class::Outbound), Ok(()));
        assert_eq!(admit(&LIMITS, three, ip("192.0.2.1"), Class::Reserved), Ok(()));
        let v6 = vec![(ip("2001:db8:1::1"), Class::Inbound), (ip("2001:db8:1::2"), Class::Inbound)];
        let mut v6 = v6;
        v6.push((ip("2001:db8:1:ffff::3"), Class::Inbound));
        assert!(admit(&LIMITS, v6.clone(), ip("2001:db8:1:7::9"), Class::Inbound).is_err());
        assert_eq!(admit(&LIMITS, v6, ip("2001:db8:2::1"), Class::Inbound), Ok(()));
    }

    #[test]
    fn outbound_slots_are_kept_and_reserved_peers_come_on_top() {
        let full_inbound: Vec<(IpAddr, Class)> =
            (0..8).map(|index| (IpAddr::from([10, index, 0, 1]), Class::Inbound)).collect();
        assert_eq!(
            admit(&LIMITS, full_inbound.clone(), ip("10.99.0.1"), Class::Inbound),
            Err("inbound slots full")
        );
        assert_eq!(admit(&LIMITS, full_inbound.clone(), ip("10.99.0.1"), Class::Outbound), Ok(()));
        let mut full = full_inbound;
        full.push((ip("10.98.0.1"), Class::Outbound));
        full.push((ip("10.97.0.1"), Class::Outbound));
        assert_eq!(
            admit(&LIMITS, full.clone(), ip("10.99.0.1"), Class::Outbound),
            Err("peer table full")
        );
        assert_eq!(admit(&LIMITS, full.clone(), ip("10.99.0.1"), Class::Reserved), Ok(()));
        // Reserved peers do not use up room either.
        let mut with_reserved = vec![(ip("10.96.0.1"), Class::Reserved); 20];
        with_reserved.truncate(20);
        assert_eq!(admit(&LIMITS, with_reserved, ip("10.99.0.1"), Class::Inbound), Ok(()));
    }

    #[test]
    fn limits_keep_room_for_outbound_dials_but_never_all_of_it() {
        assert_eq!(SlotLimits::new(50, 8, 4, 16).max_inbound, 42);
        assert_eq!(SlotLimits::new(1, 8, 4, 16).max_inbound, 1);
        assert_eq!(
            SlotLimits::new(6, 8, 0, 0),
            SlotLimits { max_peers: 6, max_inbound: 3, per_ip: 1, per_subnet: 1 }
        );
    }
}
