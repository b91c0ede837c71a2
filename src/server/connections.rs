//! The connections of one listener: the cap on all of them (`-max-connections`), the cap per
//! client address (`-max-connections-per-ip`), the time allowed for a connection's first byte
//! (`-first-byte-timeout`), and shedding of idle connections when a cap is reached.
//!
//! A connection is idle from the moment it is accepted, and again after each response, until
//! the headers of its next request have been read. An idle connection holds a slot and does no
//! work, so when a cap is reached the connection idle the longest is asked to close instead of
//! making the new client wait behind it. hyper closes an idle connection at once when asked,
//! and lets a request whose headers it has read finish first.
//!
//! Left alone, an idle keep-alive connection is closed by hyper's header timer
//! (`-read-timeout`), which starts as soon as the connection waits for its next request.
//!
//! The cap per address counts the TCP peer, so behind a reverse proxy every request counts
//! against the proxy's address: the default leaves room for a proxy's many connections.

use std::collections::HashMap;
use std::future::Future;
use std::net::IpAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use tokio::sync::{Notify, OwnedSemaphorePermit, Semaphore};

/// How long a full listener waits for a connection it asked to close before asking another.
const CLOSE_GRACE: Duration = Duration::from_millis(500);

/// Every connection of one listener.
#[derive(Debug)]
pub struct Connections {
    /// One permit per open connection (`-max-connections`).
    permits: Arc<Semaphore>,
    /// Most connections per client address; 0 for no cap.
    per_address_cap: usize,
    registry: Mutex<Registry>,
    /// A connection became idle: a full listener waiting for a permit may shed it.
    became_idle: Notify,
    /// The last connection closed.
    drained: Notify,
}

#[derive(Debug, Default)]
struct Registry {
    /// Gives ids, and orders the moments connections became idle.
    clock: u64,
    entries: HashMap<u64, Entry>,
    /// Open connections per client address, leaving out those already asked to close.
    per_address: HashMap<IpAddr, usize>,
}

#[derive(Debug)]
struct Entry {
    /// `None` for a Unix socket peer, which has no address and no cap of its own.
    address: Option<IpAddr>,
    /// When the connection last became idle (a [`Registry::clock`] reading); `None` while a
    /// request is read or answered.
    idle_since: Option<u64>,
    close: Arc<CloseSignal>,
}

/// Set once a connection should close; stays set, so a late waiter still sees it.
#[derive(Debug, Default)]
struct CloseSignal {
    asked: AtomicBool,
    changed: Notify,
}

impl CloseSignal {
    fn is_asked(&self) -> bool {
        self.asked.load(Ordering::Acquire)
    }

    async fn wait(&self) {
        loop {
            let changed = self.changed.notified();
            tokio::pin!(changed);
            changed.as_mut().enable();
            if self.is_asked() {
                return;
            }
            changed.await;
        }
    }
}

impl Connections {
    pub fn new(max_connections: usize, per_address_cap: usize) -> Arc<Self> {
        Arc::new(Self {
            permits: Arc::new(Semaphore::new(max_connections.max(1))),
            per_address_cap,
            registry: Mutex::new(Registry::default()),
            became_idle: Notify::new(),
            drained: Notify::new(),
        })
    }

    /// Admits a connection accepted from `peer`, or refuses it (`None`) when its address
    /// already has `-max-connections-per-ip` connections all serving requests. At a cap, the
    /// connection idle the longest (of that address, or of all) is asked to close to make room;
    /// when every connection is serving a request, this waits for a slot.
    pub async fn admit(self: &Arc<Self>, peer: IpAddr) -> Option<Connection> {
        // Unix socket peers all appear as 0.0.0.0; a TCP peer never does.
        let address =
            (!peer.is_unspecified()).then(|| crate::pipeline::rate_limit::bucket_key(peer));
        if let Some(address) = address
            && self.per_address_cap > 0
        {
            let mut registry = self.registry();
            let count = registry.per_address.get(&address).copied().unwrap_or(0);
            if count >= self.per_address_cap
                && !registry.shed_oldest_idle(|entry| entry.address == Some(address))
            {
                tracing::debug!(
                    "refused a connection from {peer}: its {count} connections are all serving \
                     requests (-max-connections-per-ip)"
                );
                return None;
            }
        }
        let permit = self.permit().await;
        Some(self.register(permit, address))
    }

    /// A slot under `-max-connections`. When all are taken, the connection idle the longest is
    /// asked to close, unless one asked earlier is still closing; with none idle, this waits
    /// until one is, or until a slot frees up. A connection asked to close finishes writing its
    /// response first, so if no slot frees up within [`CLOSE_GRACE`], the next idle one is
    /// asked too: a client that stops reading cannot hold up the listener.
    async fn permit(&self) -> OwnedSemaphorePermit {
        let mut impatient = false;
        loop {
            if let Ok(permit) = self.permits.clone().try_acquire_owned() {
                return permit;
            }
            let room_coming = {
                let mut registry = self.registry();
                (!impatient && registry.is_closing_one()) || registry.shed_oldest_idle(|_| true)
            };
            tokio::select! {
                permit = self.permits.clone().acquire_owned() => {
                    return permit.expect("the connection semaphore is never closed");
                }
                () = self.became_idle.notified(), if !room_coming => {}
                () = tokio::time::sleep(CLOSE_GRACE), if room_coming => impatient = true,
            }
        }
    }

    fn register(
        self: &Arc<Self>,
        permit: OwnedSemaphorePermit,
        address: Option<IpAddr>,
    ) -> Connection {
        let mut registry = self.registry();
        if let Some(address) = address {
            *registry.per_address.entry(address).or_default() += 1;
        }
        let id = registry.tick();
        let close = Arc::new(CloseSignal::default());
        registry.entries.insert(
            id,
            Entry {
                address,
                idle_since: Some(id),
                close: close.clone(),
            },
        );
        Connection {
            id,
            connections: self.clone(),
            close,
            _permit: permit,
        }
    }

    /// Asks every connection to close once its request in progress is answered.
    pub fn close_all(&self) {
        let mut registry = self.registry();
        let Registry {
            entries,
            per_address,
            ..
        } = &mut *registry;
        for entry in entries.values_mut() {
            entry.ask_to_close(per_address);
        }
    }

    /// Resolves once no connection is open.
    pub async fn drained(&self) {
        loop {
            let notified = self.drained.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            if self.registry().entries.is_empty() {
                return;
            }
            notified.await;
        }
    }

    fn registry(&self) -> MutexGuard<'_, Registry> {
        // The registry is consistent after every statement, so a panic elsewhere leaves it usable.
        self.registry
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

impl Registry {
    fn tick(&mut self) -> u64 {
        self.clock += 1;
        self.clock
    }

    /// Whether a connection asked to close is still open.
    fn is_closing_one(&self) -> bool {
        self.entries.values().any(|entry| entry.close.is_asked())
    }

    /// Asks the connection idle the longest among those `eligible` to close; false if none is
    /// idle.
    fn shed_oldest_idle(&mut self, eligible: impl Fn(&Entry) -> bool) -> bool {
        let Registry {
            entries,
            per_address,
            ..
        } = self;
        let oldest = entries
            .values_mut()
            .filter(|entry| !entry.close.is_asked() && eligible(entry))
            .filter_map(|entry| Some((entry.idle_since?, entry)))
            .min_by_key(|(idle_since, _)| *idle_since);
        match oldest {
            Some((_, entry)) => {
                entry.ask_to_close(per_address);
                true
            }
            None => false,
        }
    }
}

impl Entry {
    fn ask_to_close(&mut self, per_address: &mut HashMap<IpAddr, usize>) {
        if self.close.asked.swap(true, Ordering::AcqRel) {
            return;
        }
        if let Some(address) = self.address {
            release(per_address, address);
        }
        self.close.changed.notify_waiters();
    }
}

fn release(per_address: &mut HashMap<IpAddr, usize>, address: IpAddr) {
    if let Some(count) = per_address.get_mut(&address) {
        *count -= 1;
        if *count == 0 {
            per_address.remove(&address);
        }
    }
}

/// One registered connection; dropping it frees its slot.
#[derive(Debug)]
pub struct Connection {
    id: u64,
    connections: Arc<Connections>,
    close: Arc<CloseSignal>,
    _permit: OwnedSemaphorePermit,
}

impl Connection {
    /// Resolves when the connection should close: a cap was reached while it was idle, or the
    /// server is shutting down.
    pub async fn close_requested(&self) {
        self.close.wait().await;
    }

    /// Waits for the client's first byte (`readable`), at most `timeout` (none when zero).
    /// False when the time ran out or the connection was asked to close first.
    pub async fn first_byte(
        &self,
        readable: impl Future<Output = std::io::Result<()>>,
        timeout: Duration,
    ) -> bool {
        let readable = async {
            if timeout.is_zero() {
                let _ = readable.await;
                true
            } else {
                tokio::time::timeout(timeout, readable).await.is_ok()
            }
        };
        tokio::select! {
            arrived = readable => arrived,
            () = self.close_requested() => false,
        }
    }

    /// Marks the connection busy until the returned guard is dropped: hold it while a request
    /// is answered.
    pub fn serving(self: &Arc<Self>) -> Serving {
        self.set_idle(false);
        Serving(self.clone())
    }

    fn set_idle(&self, idle: bool) {
        let mut registry = self.connections.registry();
        let moment = registry.tick();
        if let Some(entry) = registry.entries.get_mut(&self.id) {
            entry.idle_since = idle.then_some(moment);
        }
        drop(registry);
        if idle {
            self.connections.became_idle.notify_one();
        }
    }
}

impl Drop for Connection {
    fn drop(&mut self) {
        let mut registry = self.connections.registry();
        if let Some(entry) = registry.entries.remove(&self.id)
            && !entry.close.is_asked()
            && let Some(address) = entry.address
        {
            release(&mut registry.per_address, address);
        }
        if registry.entries.is_empty() {
            self.connections.drained.notify_waiters();
        }
    }
}

/// A request in progress on a connection; the connection is idle again once this is dropped.
#[derive(Debug)]
pub struct Serving(Arc<Connection>);

impl Drop for Serving {
    fn drop(&mut self) {
        self.0.set_idle(true);
    }
}

/// `response` with `serving` held until its body is sent, when the body streams (a whole
/// body is written at once, so the connection is idle again as soon as it is handed over).
pub fn serving_until_sent(
    response: super::respond::HttpResponse,
    serving: Serving,
) -> super::respond::HttpResponse {
    use http_body_util::BodyExt as _;
    use hyper::body::Body as _;
    if response.body().size_hint().exact().is_some() {
        return response;
    }
    response.map(|body| {
        body.map_frame(move |frame| {
            let _held = &serving;
            frame
        })
        .boxed_unsync()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const LOCAL: IpAddr = IpAddr::V4(std::net::Ipv4Addr::LOCALHOST);
    const OTHER: IpAddr = IpAddr::V4(std::net::Ipv4Addr::new(192, 0, 2, 1));

    async fn connect(connections: &Arc<Connections>, peer: IpAddr) -> Option<Arc<Connection>> {
        connections.admit(peer).await.map(Arc::new)
    }

    fn asked_to_close(connection: &Connection) -> bool {
        connection.close.is_asked()
    }

    /// Awaits `future`, failing the test instead of hanging.
    async fn soon<T>(future: impl Future<Output = T>) -> T {
        tokio::time::timeout(Duration::from_secs(5), future)
            .await
            .expect("did not happen within 5 s")
    }

    #[tokio::test]
    async fn a_full_address_sheds_its_oldest_idle_connection() {
        let connections = Connections::new(100, 2);
        let first = connect(&connections, LOCAL).await.unwrap();
        let second = connect(&connections, LOCAL).await.unwrap();
        let other = connect(&connections, OTHER).await.unwrap();
        let third = connect(&connections, LOCAL).await.unwrap();
        assert!(asked_to_close(&first), "the oldest idle one makes room");
        assert!(!asked_to_close(&second));
        assert!(!asked_to_close(&other), "other addresses are left alone");
        assert!(!asked_to_close(&third));
    }

    #[tokio::test]
    async fn a_full_address_with_every_connection_busy_is_refused() {
        let connections = Connections::new(100, 2);
        let first = connect(&connections, LOCAL).await.unwrap();
        let second = connect(&connections, LOCAL).await.unwrap();
        let _busy = (first.serving(), second.serving());
        assert!(connect(&connections, LOCAL).await.is_none());
        assert!(connect(&connections, OTHER).await.is_some());
        drop(_busy);
        assert!(
            connect(&connections, LOCAL).await.is_some(),
            "idle again, so one can be shed"
        );
        assert!(asked_to_close(&first) != asked_to_close(&second));
    }

    #[tokio::test]
    async fn a_busy_connection_is_passed_over_for_an_idle_one() {
        let connections = Connections::new(100, 2);
        let first = connect(&connections, LOCAL).await.unwrap();
        let second = connect(&connections, LOCAL).await.unwrap();
        let _busy = first.serving();
        connect(&connections, LOCAL).await.unwrap();
        assert!(!asked_to_close(&first));
        assert!(asked_to_close(&second));
    }

    #[tokio::test]
    async fn a_closed_connection_frees_its_place() {
        let connections = Connections::new(100, 1);
        let first = connect(&connections, LOCAL).await.unwrap();
        let _busy = first.serving();
        assert!(connect(&connections, LOCAL).await.is_none());
        drop(_busy);
        drop(first);
        let next = connect(&connections, LOCAL).await.unwrap();
        assert!(!asked_to_close(&next));
    }

    #[tokio::test]
    async fn no_cap_per_address_when_zero_or_for_unix_peers() {
        for (cap, peer) in [(0, LOCAL), (1, IpAddr::from([0, 0, 0, 0]))] {
            let connections = Connections::new(100, cap);
            let all: Vec<_> =
                futures_util::future::join_all((0..5).map(|_| connect(&connections, peer)))
                    .await
                    .into_iter()
                    .map(Option::unwrap)
                    .collect();
            assert!(all.iter().all(|c| !asked_to_close(c)));
        }
    }

    #[tokio::test]
    async fn ipv6_clients_count_per_64() {
        let connections = Connections::new(100, 1);
        let first = connect(&connections, "2001:db8::1".parse().unwrap())
            .await
            .unwrap();
        connect(&connections, "2001:db8::2".parse().unwrap())
            .await
            .unwrap();
        assert!(asked_to_close(&first));
    }

    #[tokio::test]
    async fn a_full_listener_sheds_the_connection_idle_the_longest() {
        let connections = Connections::new(2, 0);
        let first = connect(&connections, LOCAL).await.unwrap();
        let second = connect(&connections, OTHER).await.unwrap();
        let _busy = second.serving();
        let admit = tokio::spawn({
            let connections = connections.clone();
            async move { connections.admit(LOCAL).await.is_some() }
        });
        soon(first.close_requested()).await;
        drop(first);
        assert!(soon(admit).await.unwrap());
        assert!(!asked_to_close(&second), "busy connections are not shed");
    }

    #[tokio::test]
    async fn a_full_listener_waits_for_a_connection_to_become_idle() {
        let connections = Connections::new(1, 0);
        let only = connect(&connections, LOCAL).await.unwrap();
        let busy = only.serving();
        let admit = tokio::spawn({
            let connections = connections.clone();
            async move { connections.admit(LOCAL).await.is_some() }
        });
        tokio::task::yield_now().await;
        assert!(!asked_to_close(&only));
        drop(busy);
        soon(only.close_requested()).await;
        drop(only);
        assert!(soon(admit).await.unwrap());
    }

    #[tokio::test]
    async fn a_full_listener_asks_another_when_the_first_does_not_close() {
        let connections = Connections::new(2, 0);
        let stuck = connect(&connections, LOCAL).await.unwrap();
        let next = connect(&connections, OTHER).await.unwrap();
        let admit = tokio::spawn({
            let connections = connections.clone();
            async move { connections.admit(LOCAL).await.is_some() }
        });
        soon(stuck.close_requested()).await;
        soon(next.close_requested()).await;
        drop(next);
        assert!(soon(admit).await.unwrap());
        drop(stuck);
    }

    #[tokio::test]
    async fn shutdown_asks_all_to_close_and_waits_for_them() {
        let connections = Connections::new(10, 0);
        let first = connect(&connections, LOCAL).await.unwrap();
        let second = connect(&connections, OTHER).await.unwrap();
        connections.close_all();
        assert!(asked_to_close(&first) && asked_to_close(&second));
        let drained = tokio::spawn({
            let connections = connections.clone();
            async move { connections.drained().await }
        });
        drop(first);
        tokio::task::yield_now().await;
        assert!(!drained.is_finished());
        drop(second);
        soon(drained).await.unwrap();
    }

    #[tokio::test]
    async fn first_byte_times_out() {
        let connections = Connections::new(10, 0);
        let connection = connect(&connections, LOCAL).await.unwrap();
        let silent = std::future::pending::<std::io::Result<()>>();
        assert!(
            !connection
                .first_byte(silent, Duration::from_millis(10))
                .await
        );
        assert!(
            connection
                .first_byte(async { Ok(()) }, Duration::from_millis(10))
                .await
        );
    }
}
