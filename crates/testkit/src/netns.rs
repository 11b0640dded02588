//! A small lab of hosts in Linux network namespaces, for tests that need several machines: each
//! host is a namespace with its own address on one bridge, so nodes see each other (and an
//! attacker) at distinct IP addresses, and a host's link can be cut for real.
//!
//! The bridge lives in the test's own namespace with an address of its own (the "gateway"),
//! so the test reaches every host's API directly and can act as further hosts by adding
//! addresses to the bridge ([`Lab::add_address`]) and binding to them. Each lab takes a
//! 10.L.0.0/16 of its own (L from 100 to 199, claimed by creating the bridge `jtbL`), so labs
//! of tests running at the same time do not meet. Everything is removed when the lab is
//! dropped, after a failed assertion too; a lab left behind by a killed test run is removed by
//! the next one (the bridge's alias names the process that made it).
//!
//! [`Lab::new`] needs root and `ip netns`; where they are missing it says so loudly on stderr
//! and returns `None`, and the test is skipped with that message.

use std::{
    net::{IpAddr, Ipv4Addr},
    process::{Command, Output},
};

/// Lowest and highest second octet a lab may use.
const SUBNETS: std::ops::RangeInclusive<u8> = 100..=199;

/// Hosts in namespaces on one bridge. Dropping it ends every process left in its namespaces
/// and removes the namespaces and the bridge.
#[derive(Debug)]
pub struct Lab {
    subnet: u8,
    hosts: usize,
}

/// Runs `ip ARGS…`; its output.
fn ip(args: &[&str]) -> Output {
    Command::new("ip").args(args).output().unwrap_or_else(|error| panic!("cannot run ip: {error}"))
}

/// Runs `ip ARGS…` and panics with its error output if it fails.
fn ip_ok(args: &[&str]) {
    let output = ip(args);
    assert!(
        output.status.success(),
        "ip {} failed: {}",
        args.join(" "),
        String::from_utf8_lossy(&output.stderr)
    );
}

fn bridge_name(subnet: u8) -> String {
    format!("jtb{subnet}")
}

fn namespace_name(subnet: u8, host: usize) -> String {
    format!("jt{subnet}h{host}")
}

/// Whether network namespaces can be made here.
fn netns_available() -> Result<(), String> {
    let probe = format!("jtprobe{}", std::process::id());
    let added = Command::new("ip").args(["netns", "add", &probe]).output();
    match added {
        Err(error) => Err(format!("`ip` cannot be run ({error})")),
        Ok(output) if !output.status.success() => {
            Err(format!("`ip netns add` fails: {}", String::from_utf8_lossy(&output.stderr).trim()))
        }
        Ok(_) => {
            let _ = ip(&["netns", "del", &probe]);
            Ok(())
        }
    }
}

/// Removes the labs whose makers have gone (a test run killed before it could clean up).
fn remove_abandoned() {
    let links =
        String::from_utf8_lossy(&ip(&["-o", "-d", "link", "show", "type", "bridge"]).stdout)
            .into_owned();
    for line in links.lines() {
        let Some(name) = line.split(": ").nth(1).map(|name| name.split('@').next().unwrap_or(name))
        else {
            continue;
        };
        let Some(subnet) = name.strip_prefix("jtb").and_then(|rest| rest.parse::<u8>().ok()) else {
            continue;
        };
        let owner = line
            .split("alias owner=")
            .nth(1)
            .and_then(|rest| rest.split_whitespace().next())
            .and_then(|pid| pid.parse::<u32>().ok());
        // A bridge without its owner yet is being made by a test starting right now.
        if owner.is_none_or(crate::is_alive) {
            continue;
        }
        Lab::remove(subnet);
    }
}

impl Lab {
    /// Makes `hosts` namespaces (host i has address 10.L.0.(i+1)) on a fresh bridge; `None`,
    /// after a loud message, where namespaces cannot be made.
    pub fn new(hosts: usize) -> Option<Lab> {
        assert!(hosts < 200, "at most 199 hosts");
        if let Err(reason) = netns_available() {
            eprintln!(
                "\n**** SKIPPED: this test needs Linux network namespaces (root and `ip netns`): {reason} ****\n"
            );
            return None;
        }
        remove_abandoned();
        let subnet = SUBNETS
            .clone()
            .find(|subnet| {
                ip(&["link", "add", &bridge_name(*subnet), "type", "bridge"]).status.success()
            })
            .expect("a free 10.L.0.0/16 for the lab");
        let lab = Lab { subnet, hosts };
        let bridge = bridge_name(subnet);
        ip_ok(&["link", "set", &bridge, "alias", &format!("owner={}", std::process::id())]);
        ip_ok(&["addr", "add", &format!("{}/16", lab.gateway()), "dev", &bridge]);
        ip_ok(&["link", "set", &bridge, "up"]);
        for host in 0..hosts {
            let namespace = namespace_name(subnet, host);
            let outside = format!("jt{subnet}v{host}");
            ip_ok(&["netns", "add", &namespace]);
            ip_ok(&[
                "link", "add", &outside, "type", "veth", "peer", "name", "eth0", "netns",
                &namespace,
            ]);
            ip_ok(&["link", "set", &outside, "master", &bridge, "up"]);
            let address = format!("{}/16", lab.host_ip(host));
            ip_ok(&["-n", &namespace, "addr", "add", &address, "dev", "eth0"]);
            ip_ok(&["-n", &namespace, "link", "set", "eth0", "up"]);
            ip_ok(&["-n", &namespace, "link", "set", "lo", "up"]);
        }
        Some(lab)
    }

    /// The address of host `host`.
    pub fn host_ip(&self, host: usize) -> IpAddr {
        assert!(host < self.hosts, "no host {host}");
        IpAddr::V4(Ipv4Addr::new(10, self.subnet, 0, u8::try_from(host + 1).expect("host")))
    }

    /// The test's own address on the lab's bridge.
    pub fn gateway(&self) -> IpAddr {
        IpAddr::V4(Ipv4Addr::new(10, self.subnet, 0, 254))
    }

    /// An address in the lab's /16 outside the hosts' 10.L.0.0/24 (for [`Lab::add_address`]):
    /// `10.L.third.fourth`.
    pub fn other_ip(&self, third: u8, fourth: u8) -> IpAddr {
        assert!(third > 0, "10.L.0.x belongs to the hosts");
        IpAddr::V4(Ipv4Addr::new(10, self.subnet, third, fourth))
    }

    /// Adds `addr` to the test's side of the bridge: sockets bound to it reach the hosts from
    /// that address.
    pub fn add_address(&self, addr: IpAddr) {
        ip_ok(&["addr", "add", &format!("{addr}/16"), "dev", &bridge_name(self.subnet)]);
    }

    /// `command` run inside host `host`'s namespace.
    pub fn command(&self, host: usize, command: &[String]) -> Vec<String> {
        let mut wrapped: Vec<String> =
            ["ip", "netns", "exec"].iter().map(|part| (*part).to_owned()).collect();
        wrapped.push(namespace_name(self.subnet, host));
        wrapped.extend_from_slice(command);
        wrapped
    }

    /// Cuts host `host` off the network: every TCP connection it has is reset at once (both
    /// ends see it close) and its link goes down, until [`Lab::restore`].
    pub fn cut(&self, host: usize) {
        let namespace = namespace_name(self.subnet, host);
        let reset = || {
            let killed = Command::new("ip")
                .args(["netns", "exec", &namespace, "ss", "-K", "-t", "state", "established"])
                .output()
                .expect("run ss");
            assert!(killed.status.success(), "ss -K: {}", String::from_utf8_lossy(&killed.stderr));
        };
        reset();
        ip_ok(&["-n", &namespace, "link", "set", "eth0", "down"]);
        // Whatever reconnected in between.
        reset();
    }

    /// Brings host `host`'s link back up after [`Lab::cut`].
    pub fn restore(&self, host: usize) {
        ip_ok(&["-n", &namespace_name(self.subnet, host), "link", "set", "eth0", "up"]);
    }

    /// Ends what still runs in lab `subnet`'s namespaces, then removes them and the bridge.
    fn remove(subnet: u8) {
        // The outside ends of the hosts' veth pairs first: deleting one end deletes the pair at
        // once, whereas a pair whose inside end goes with its namespace lingers for a moment
        // in the kernel, and a lab made meanwhile on the freed subnet would find its names
        // taken.
        let veth = format!("jt{subnet}v");
        let links = String::from_utf8_lossy(&ip(&["-o", "link", "show"]).stdout).into_owned();
        for name in links.lines().filter_map(|line| line.split(": ").nth(1)) {
            let name = name.split('@').next().unwrap_or(name);
            if name.strip_prefix(&veth).is_some_and(|host| host.parse::<u8>().is_ok()) {
                let _ = ip(&["link", "del", name]);
            }
        }
        let prefix = format!("jt{subnet}h");
        let listed = String::from_utf8_lossy(&ip(&["netns", "list"]).stdout).into_owned();
        for namespace in listed.lines().filter_map(|line| line.split_whitespace().next()) {
            if !namespace.starts_with(&prefix) {
                continue;
            }
            let pids = ip(&["netns", "pids", namespace]);
            for pid in String::from_utf8_lossy(&pids.stdout).split_whitespace() {
                if let Ok(pid) = pid.parse::<u32>() {
                    crate::signal(pid, libc::SIGKILL);
                }
            }
            let _ = ip(&["netns", "del", namespace]);
        }
        let _ = ip(&["link", "del", &bridge_name(subnet)]);
    }
}

impl Drop for Lab {
    fn drop(&mut self) {
        Lab::remove(self.subnet);
    }
}
