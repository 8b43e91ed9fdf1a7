//! The network coming back: on Linux, the kernel's link, address and route events (a
//! `NETLINK_ROUTE` socket subscribed to their multicast groups), read without a thread on
//! the runtime's reactor. The background task treats each burst of them as "try now"
//! ([`crate::AuthClient::nudge`]): a refresh or a revocation backing off is tried at once
//! instead of waiting out its back-off.
//!
//! Other platforms have no such source here; their apps call `nudge` on focus and resume
//! (the Tauri plugin does), which covers a network that came back while the app was in the
//! background.

#[cfg(target_os = "linux")]
use std::time::Duration;

/// How long a burst of events (a link coming up, then its address, then its routes) is
/// given to settle before the engine tries: the route that makes the server reachable
/// comes last.
#[cfg(target_os = "linux")]
const SETTLE: Duration = Duration::from_millis(750);

/// A subscription to the OS's network changes.
pub(crate) struct NetWatch {
    #[cfg(target_os = "linux")]
    socket: netlink_sys::TokioSocket,
}

impl std::fmt::Debug for NetWatch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("NetWatch")
    }
}

impl NetWatch {
    /// Subscribes; an error where the OS offers no such events (or refuses them, as a
    /// sandbox may).
    pub(crate) fn open() -> std::io::Result<Self> {
        #[cfg(target_os = "linux")]
        {
            linux::open()
        }
        #[cfg(not(target_os = "linux"))]
        {
            Err(std::io::Error::new(
                std::io::ErrorKind::Unsupported,
                "no network-change events on this platform",
            ))
        }
    }

    /// Waits for the next change of links, addresses or routes, then for its burst to
    /// settle. An error means the subscription is broken; the caller stops watching.
    pub(crate) async fn changed(&mut self) -> std::io::Result<()> {
        #[cfg(target_os = "linux")]
        {
            linux::changed(self).await
        }
        #[cfg(not(target_os = "linux"))]
        {
            std::future::pending().await
        }
    }
}

#[cfg(target_os = "linux")]
mod linux {
    use std::io;

    use netlink_sys::protocols::NETLINK_ROUTE;
    use netlink_sys::{AsyncSocket, AsyncSocketExt, SocketAddr, TokioSocket};
    use nix::libc::{
        ENOBUFS, MSG_DONTWAIT, RTMGRP_IPV4_IFADDR, RTMGRP_IPV4_ROUTE, RTMGRP_IPV6_IFADDR,
        RTMGRP_IPV6_ROUTE, RTMGRP_LINK,
    };

    use super::{NetWatch, SETTLE};

    pub(super) fn open() -> io::Result<NetWatch> {
        let mut socket = TokioSocket::new(NETLINK_ROUTE)?;
        let groups = RTMGRP_LINK
            | RTMGRP_IPV4_IFADDR
            | RTMGRP_IPV6_IFADDR
            | RTMGRP_IPV4_ROUTE
            | RTMGRP_IPV6_ROUTE;
        socket
            .socket_mut()
            .bind(&SocketAddr::new(0, groups.cast_unsigned()))?;
        Ok(NetWatch { socket })
    }

    pub(super) async fn changed(watch: &mut NetWatch) -> io::Result<()> {
        let mut buf = Vec::with_capacity(8192);
        match watch.socket.recv(&mut buf).await {
            Ok(()) => {}
            // More changes than the socket could hold: a change all the same.
            Err(e) if e.raw_os_error() == Some(ENOBUFS) => {}
            Err(e) => return Err(e),
        }
        tokio::time::sleep(SETTLE).await;
        // The rest of the burst says nothing new.
        loop {
            buf.clear();
            match watch.socket.socket_ref().recv(&mut buf, MSG_DONTWAIT) {
                Ok(_) => {}
                Err(e) if e.raw_os_error() == Some(ENOBUFS) => {}
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(()),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
    }
}
