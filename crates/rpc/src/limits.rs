//! Caps on open connections, in total and per client address, for HTTP and WebSocket alike.
//!
//! A connection over a cap is closed as soon as it is accepted, so that the file descriptors a
//! flood of idle connections would hold are never used up, and the refusal is logged as a
//! warning (at most every ten seconds, with how many were refused meanwhile). A connection's
//! slot travels with its socket ([`Counted`]): a WebSocket, which outlives the HTTP request
//! that upgraded it, keeps its slot until the socket closes.

use std::{
    collections::HashMap,
    net::{IpAddr, SocketAddr},
    pin::Pin,
    sync::{Arc, Mutex},
    task::{Context, Poll},
    time::{Duration, Instant},
};
use tokio::{
    io::{AsyncRead, AsyncWrite, ReadBuf},
    net::TcpStream,
};
use tracing::{debug, warn};

/// How often a refusal is logged as a warning, at most.
const WARNING_INTERVAL: Duration = Duration::from_secs(10);

/// The connection caps of one server; cheap to clone.
#[derive(Clone)]
pub(crate) struct ConnectionCaps {
    state: Arc<Mutex<Counts>>,
}

struct Counts {
    total: usize,
    per_client: usize,
    open: usize,
    by_client: HashMap<IpAddr, usize>,
    refused: u64,
    last_warning: Option<Instant>,
}

impl Counts {
    /// Whether a warning is due (and if so, that it is given now).
    fn time_to_warn(&mut self) -> bool {
        let now = Instant::now();
        let due = self.last_warning.is_none_or(|last| now.duration_since(last) >= WARNING_INTERVAL);
        if due {
            self.last_warning = Some(now);
        }
        due
    }
}

impl ConnectionCaps {
    /// At most `total` connections, `per_client` of them from one IP address.
    pub(crate) fn new(total: u32, per_client: u32) -> ConnectionCaps {
        let counts = Counts {
            total: usize::try_from(total.max(1)).unwrap_or(usize::MAX),
            per_client: usize::try_from(per_client.max(1)).unwrap_or(usize::MAX),
            open: 0,
            by_client: HashMap::new(),
            refused: 0,
            last_warning: None,
        };
        ConnectionCaps { state: Arc::new(Mutex::new(counts)) }
    }

    /// Takes a slot for a connection from `client`, or says why there is none.
    fn take(&self, client: IpAddr) -> Result<Slot, &'static str> {
        let mut counts = self.state.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        let from_client = counts.by_client.get(&client).copied().unwrap_or(0);
        let refusal = if counts.open >= counts.total {
            Some("the server's connection limit is reached")
        } else if from_client >= counts.per_client {
            Some("this client's connection limit is reached")
        } else {
            None
        };
        if let Some(reason) = refusal {
            counts.refused = counts.refused.saturating_add(1);
            if counts.time_to_warn() {
                warn!(
                    %client,
                    reason,
                    refused = counts.refused,
                    open = counts.open,
                    from_client,
                    "refusing JSON-RPC connections"
                );
                counts.refused = 0;
            }
            return Err(reason);
        }
        counts.open += 1;
        *counts.by_client.entry(client).or_default() += 1;
        Ok(Slot { caps: self.clone(), client })
    }

    /// The socket with its slot, or the reason it was closed.
    pub(crate) fn admit(
        &self,
        socket: TcpStream,
        remote: SocketAddr,
    ) -> Result<Counted, &'static str> {
        let slot = self.take(remote.ip().to_canonical())?;
        Ok(Counted { socket, _slot: slot })
    }

    /// Accepting failed (out of file descriptors, say): a warning at most every ten seconds.
    pub(crate) fn accept_failed(&self, error: &std::io::Error) {
        let mut counts = self.state.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        if counts.time_to_warn() {
            warn!(%error, open = counts.open, "cannot accept JSON-RPC connections");
        } else {
            debug!(%error, "cannot accept a JSON-RPC connection");
        }
    }

    fn release(&self, client: IpAddr) {
        let mut counts = self.state.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        counts.open = counts.open.saturating_sub(1);
        if let Some(count) = counts.by_client.get_mut(&client) {
            *count = count.saturating_sub(1);
            if *count == 0 {
                counts.by_client.remove(&client);
            }
        }
    }
}

/// One connection's place under the caps, given back when dropped.
struct Slot {
    caps: ConnectionCaps,
    client: IpAddr,
}

impl Drop for Slot {
    fn drop(&mut self) {
        self.caps.release(self.client);
    }
}

/// A socket that holds its connection slot for as long as it is open.
pub(crate) struct Counted {
    socket: TcpStream,
    _slot: Slot,
}

impl Counted {
    /// The socket.
    pub(crate) fn socket(&self) -> &TcpStream {
        &self.socket
    }
}

impl AsyncRead for Counted {
    fn poll_read(
        self: Pin<&mut Self>,
        context: &mut Context<'_>,
        buffer: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.get_mut().socket).poll_read(context, buffer)
    }
}

impl AsyncWrite for Counted {
    fn poll_write(
        self: Pin<&mut Self>,
        context: &mut Context<'_>,
        buffer: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.get_mut().socket).poll_write(context, buffer)
    }

    fn poll_flush(self: Pin<&mut Self>, context: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.get_mut().socket).poll_flush(context)
    }

    fn poll_shutdown(self: Pin<&mut Self>, context: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.get_mut().socket).poll_shutdown(context)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        context: &mut Context<'_>,
        buffers: &[std::io::IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.get_mut().socket).poll_write_vectored(context, buffers)
    }

    fn is_write_vectored(&self) -> bool {
        self.socket.is_write_vectored()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(text: &str) -> IpAddr {
        text.parse().unwrap()
    }

    #[test]
    fn connections_are_capped_per_client_and_in_total_and_slots_come_back() {
        let caps = ConnectionCaps::new(5, 2);
        let first = caps.take(ip("127.0.0.2")).unwrap();
        let _second = caps.take(ip("127.0.0.2")).unwrap();
        assert_eq!(
            caps.take(ip("127.0.0.2")).err(),
            Some("this client's connection limit is reached")
        );
        // IPv4-mapped is canonicalised by `admit`; other clients still get in.
        let others: Vec<Slot> = ["10.0.0.1", "10.0.0.2", "10.0.0.3"]
            .iter()
            .map(|text| caps.take(ip(text)).unwrap())
            .collect();
        assert_eq!(
            caps.take(ip("10.0.0.4")).err(),
            Some("the server's connection limit is reached")
        );
        drop(first);
        assert!(caps.take(ip("10.0.0.4")).is_ok(), "a closed connection frees its slot");
        drop(others);
        assert_eq!(caps.state.lock().unwrap().open, 1);
    }
}
