//! What `GET /metrics` shows besides the node's own metrics ([`node::NodeMetrics`]): calls and
//! their latency by method, what the node says at each scrape (the head's age, peers, syncing,
//! health), the market's position, the process (memory, CPU, file descriptors, threads) and the
//! build. Encoded as OpenMetrics for a client that asks for it (`Accept:
//! application/openmetrics-text`, as Prometheus does) and as the Prometheus text format 0.0.4
//! for everyone else (`to_prometheus_text`).

use jsonrpsee::{
    MethodResponse,
    core::middleware::{Batch, Notification, RpcServiceT},
    types::Request,
};
use prometheus_client::{
    collector::Collector,
    encoding::{DescriptorEncoder, EncodeLabelSet, EncodeMetric},
    metrics::{
        MetricType,
        counter::{ConstCounter, Counter},
        family::Family,
        gauge::{ConstGauge, Gauge},
        histogram::Histogram,
        info::Info,
    },
    registry::{Registry, Unit},
};
use std::{
    collections::{BTreeMap, BTreeSet},
    future::Future,
    sync::{Arc, atomic::AtomicU64},
    time::Instant,
};

/// The version of this build.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");
/// The commit this build was made from (`git describe --always --dirty`), or `unknown` when
/// built outside a git checkout.
pub const COMMIT: &str = env!("JOULE_COMMIT");
/// Version and commit in one line, as `joule --version` prints them.
pub const VERSION_LINE: &str =
    concat!(env!("CARGO_PKG_VERSION"), " (commit ", env!("JOULE_COMMIT"), ")");

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct CallLabels {
    method: String,
    /// `ok` or `error`.
    outcome: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct MethodLabel {
    method: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct DirectionLabel {
    direction: String,
}

/// Calls by method and outcome, and their latency. Methods the server does not have count as
/// `other`, so that callers cannot grow the label set.
#[derive(Clone)]
pub(crate) struct ApiMetrics {
    calls: Family<CallLabels, Counter>,
    latency: Family<MethodLabel, Histogram>,
    known: Arc<BTreeSet<String>>,
}

impl ApiMetrics {
    fn method(&self, name: &str) -> String {
        if self.known.contains(name) { name.to_owned() } else { "other".to_owned() }
    }

    fn record(&self, method: &str, success: bool, started: Instant) {
        let method = self.method(method);
        self.latency
            .get_or_create(&MethodLabel { method: method.clone() })
            .observe(started.elapsed().as_secs_f64());
        let outcome = if success { "ok" } else { "error" };
        self.calls.get_or_create(&CallLabels { method, outcome }).inc();
    }
}

/// What the node says at each scrape.
#[derive(Clone, Default)]
pub(crate) struct ScrapeGauges {
    pub(crate) head_age_seconds: Gauge<f64, AtomicU64>,
    pub(crate) head_timestamp_seconds: Gauge<f64, AtomicU64>,
    peers: Family<DirectionLabel, Gauge>,
    pub(crate) syncing: Gauge,
    pub(crate) best_peer_height: Gauge,
    pub(crate) healthy: Gauge,
    pub(crate) speed: Gauge,
    pub(crate) market_current_slot: Gauge,
    pub(crate) market_next_clear_slot: Gauge,
    pub(crate) market_next_settle_slot: Gauge,
}

impl ScrapeGauges {
    /// Sets the number of connected peers by direction.
    pub(crate) fn set_peers(&self, outbound: i64, inbound: i64) {
        self.peers.get_or_create(&DirectionLabel { direction: "outbound".into() }).set(outbound);
        self.peers.get_or_create(&DirectionLabel { direction: "inbound".into() }).set(inbound);
    }
}

/// Registers the API's metrics, the scrape-time gauges, the process and the build under
/// `registry`; `methods` are the names calls are counted by.
pub(crate) fn register<'a>(
    registry: &mut Registry,
    methods: impl Iterator<Item = &'a str>,
) -> (ApiMetrics, ScrapeGauges) {
    let seconds = || {
        Histogram::new([
            0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
        ])
    };
    let api = ApiMetrics {
        calls: Family::default(),
        latency: Family::new_with_constructor(seconds),
        known: Arc::new(methods.map(str::to_owned).collect()),
    };
    let gauges = ScrapeGauges::default();
    registry.register_collector(Box::new(ProcessCollector));
    let joule = registry.sub_registry_with_prefix("joule");
    joule.register(
        "build",
        "The software's version and the commit it was built from",
        Info::new(vec![("version", VERSION), ("commit", COMMIT)]),
    );
    joule.register(
        "rpc_calls",
        "JSON-RPC calls answered, by method (other: no such method) and outcome",
        api.calls.clone(),
    );
    joule.register_with_unit(
        "rpc_call_duration",
        "Time to answer a JSON-RPC call, by method",
        Unit::Seconds,
        api.latency.clone(),
    );
    joule.register_with_unit(
        "head_age",
        "Wall time since the head's timestamp, at the scrape",
        Unit::Seconds,
        gauges.head_age_seconds.clone(),
    );
    joule.register_with_unit(
        "head_timestamp",
        "The head's timestamp (chain time, seconds since the Unix epoch)",
        Unit::Seconds,
        gauges.head_timestamp_seconds.clone(),
    );
    joule.register("peers", "Connected peers, by who dialled", gauges.peers.clone());
    joule.register(
        "syncing",
        "1 while the node downloads blocks it missed, else 0",
        gauges.syncing.clone(),
    );
    joule.register(
        "best_peer_height",
        "The highest head a peer reports (0 without peers)",
        gauges.best_peer_height.clone(),
    );
    joule.register(
        "healthy",
        "1 when GET /health answers 200 (the chain advances, the node is in step and has the peers it needs), else 0",
        gauges.healthy.clone(),
    );
    joule.register(
        "clock_speed",
        "How many times as fast as the wall clock chain time runs (1 in production)",
        gauges.speed.clone(),
    );
    joule.register(
        "market_current_slot",
        "The delivery slot the head's time falls in",
        gauges.market_current_slot.clone(),
    );
    joule.register(
        "market_next_clear_slot",
        "The next delivery slot to be cleared",
        gauges.market_next_clear_slot.clone(),
    );
    joule.register(
        "market_next_settle_slot",
        "The next delivery slot to be settled",
        gauges.market_next_settle_slot.clone(),
    );
    (api, gauges)
}

/// The tower layer that counts and times every call, over HTTP and WebSocket.
#[derive(Clone)]
pub(crate) struct ApiMetricsLayer(pub(crate) ApiMetrics);

impl<S> tower::Layer<S> for ApiMetricsLayer {
    type Service = CountedCalls<S>;

    fn layer(&self, inner: S) -> CountedCalls<S> {
        CountedCalls { inner, metrics: self.0.clone() }
    }
}

/// The service made by [`ApiMetricsLayer`].
#[derive(Clone)]
pub(crate) struct CountedCalls<S> {
    inner: S,
    metrics: ApiMetrics,
}

impl<S> RpcServiceT for CountedCalls<S>
where
    S: RpcServiceT<
            MethodResponse = MethodResponse,
            BatchResponse = MethodResponse,
            NotificationResponse = MethodResponse,
        > + Send
        + Sync
        + Clone
        + 'static,
{
    type MethodResponse = MethodResponse;
    type NotificationResponse = MethodResponse;
    type BatchResponse = MethodResponse;

    fn call<'a>(&self, request: Request<'a>) -> impl Future<Output = MethodResponse> + Send + 'a {
        let inner = self.inner.clone();
        let metrics = self.metrics.clone();
        async move {
            let started = Instant::now();
            let method = request.method_name().to_owned();
            let response = inner.call(request).await;
            metrics.record(&method, response.is_success(), started);
            response
        }
    }

    /// Batches over HTTP never get here (the JSON-RPC layer forwards each call on its own);
    /// over WebSocket each call of a batch is counted with the batch's time.
    fn batch<'a>(&self, batch: Batch<'a>) -> impl Future<Output = MethodResponse> + Send + 'a {
        let inner = self.inner.clone();
        let metrics = self.metrics.clone();
        let methods: Vec<String> = batch
            .iter()
            .filter_map(|entry| entry.as_ref().ok())
            .map(|entry| entry.method_name().to_owned())
            .collect();
        async move {
            let started = Instant::now();
            let response = inner.batch(batch).await;
            for method in methods {
                metrics.record(&method, response.is_success(), started);
            }
            response
        }
    }

    fn notification<'a>(
        &self,
        notification: Notification<'a>,
    ) -> impl Future<Output = MethodResponse> + Send + 'a {
        self.inner.notification(notification)
    }
}

/// The process's resources, read from `/proc` at each scrape, under the names every Prometheus
/// client library uses.
#[derive(Debug)]
struct ProcessCollector;

/// What `/proc/self` says.
#[derive(Debug, Default, PartialEq)]
struct ProcessStats {
    cpu_seconds: f64,
    resident_bytes: i64,
    virtual_bytes: i64,
    threads: i64,
    start_time_seconds: f64,
    open_fds: i64,
    max_fds: i64,
}

/// Parses `/proc/self/stat` (after the command name, which may hold spaces), `/proc/stat`'s
/// boot time and `/proc/self/limits`.
fn parse_process(stat: &str, boot_time: u64, limits: &str, ticks: f64, page: i64) -> ProcessStats {
    let fields: Vec<&str> = stat
        .rsplit_once(')')
        .map(|(_, rest)| rest.split_whitespace().collect())
        .unwrap_or_default();
    // Fields after the name, counted from 0: state is 0, utime 11, stime 12, threads 17,
    // starttime 19, vsize 20, rss 21.
    let number = |index: usize| fields.get(index).and_then(|text| text.parse::<f64>().ok());
    let cpu = number(11).unwrap_or(0.0) + number(12).unwrap_or(0.0);
    let max_fds = limits
        .lines()
        .find(|line| line.starts_with("Max open files"))
        .and_then(|line| line.split_whitespace().nth(3))
        .and_then(|text| text.parse().ok())
        .unwrap_or(0);
    ProcessStats {
        cpu_seconds: cpu / ticks,
        resident_bytes: number(21).unwrap_or(0.0) as i64 * page,
        virtual_bytes: number(20).unwrap_or(0.0) as i64,
        threads: number(17).unwrap_or(0.0) as i64,
        start_time_seconds: boot_time as f64 + number(19).unwrap_or(0.0) / ticks,
        open_fds: 0,
        max_fds,
    }
}

fn process_stats() -> Option<ProcessStats> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    let boot_time = std::fs::read_to_string("/proc/stat")
        .ok()?
        .lines()
        .find_map(|line| line.strip_prefix("btime ").and_then(|text| text.trim().parse().ok()))
        .unwrap_or(0);
    let limits = std::fs::read_to_string("/proc/self/limits").unwrap_or_default();
    // SAFETY: sysconf only reads a system constant.
    let (ticks, page) =
        unsafe { (libc::sysconf(libc::_SC_CLK_TCK), libc::sysconf(libc::_SC_PAGESIZE)) };
    let mut stats = parse_process(
        &stat,
        boot_time,
        &limits,
        ticks.max(1) as f64,
        i64::from(page.max(1) as i32),
    );
    stats.open_fds = std::fs::read_dir("/proc/self/fd").map_or(0, |entries| entries.count() as i64);
    Some(stats)
}

impl Collector for ProcessCollector {
    fn encode(&self, mut encoder: DescriptorEncoder<'_>) -> Result<(), std::fmt::Error> {
        let Some(stats) = process_stats() else { return Ok(()) };
        let cpu = ConstCounter::new(stats.cpu_seconds);
        cpu.encode(encoder.encode_descriptor(
            "process_cpu",
            "User and system CPU time spent",
            Some(&Unit::Seconds),
            MetricType::Counter,
        )?)?;
        let gauges: [(&str, &str, Option<Unit>, i64); 5] = [
            (
                "process_resident_memory",
                "Resident memory size",
                Some(Unit::Bytes),
                stats.resident_bytes,
            ),
            (
                "process_virtual_memory",
                "Virtual memory size",
                Some(Unit::Bytes),
                stats.virtual_bytes,
            ),
            ("process_open_fds", "Open file descriptors", None, stats.open_fds),
            (
                "process_max_fds",
                "Most open file descriptors allowed (soft limit)",
                None,
                stats.max_fds,
            ),
            ("process_threads", "Operating system threads", None, stats.threads),
        ];
        for (name, help, unit, value) in gauges {
            ConstGauge::new(value).encode(encoder.encode_descriptor(
                name,
                help,
                unit.as_ref(),
                MetricType::Gauge,
            )?)?;
        }
        ConstGauge::new(stats.start_time_seconds).encode(encoder.encode_descriptor(
            "process_start_time",
            "Start time of the process since the Unix epoch",
            Some(&Unit::Seconds),
            MetricType::Gauge,
        )?)?;
        Ok(())
    }
}

/// The OpenMetrics content type.
pub(crate) const OPENMETRICS: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";
/// The Prometheus text format's content type.
pub(crate) const PROMETHEUS_TEXT: &str = "text/plain; version=0.0.4; charset=utf-8";

/// Whether an `Accept` header asks for OpenMetrics (with a quality above zero).
pub(crate) fn wants_openmetrics(accept: Option<&str>) -> bool {
    accept.is_some_and(|accept| {
        accept.split(',').any(|item| {
            let mut parts = item.split(';').map(str::trim);
            let media = parts.next().unwrap_or("");
            let refused = parts.any(|part| {
                part.strip_prefix("q=").and_then(|q| q.parse::<f64>().ok()) == Some(0.0)
            });
            media.eq_ignore_ascii_case("application/openmetrics-text") && !refused
        })
    })
}

/// OpenMetrics text as the Prometheus text format 0.0.4: a counter family is named by its
/// `_total` series, an info family by its `_info` series (as a gauge), and the `# UNIT` and
/// `# EOF` lines go.
pub(crate) fn to_prometheus_text(openmetrics: &str) -> String {
    let mut types = BTreeMap::new();
    for line in openmetrics.lines() {
        if let Some(rest) = line.strip_prefix("# TYPE ")
            && let Some((name, kind)) = rest.split_once(' ')
        {
            types.insert(name.to_owned(), kind.to_owned());
        }
    }
    let renamed = |name: &str| match types.get(name).map(String::as_str) {
        Some("counter") => (format!("{name}_total"), "counter"),
        Some("info") => (format!("{name}_info"), "gauge"),
        Some("unknown") => (name.to_owned(), "untyped"),
        Some("gauge") => (name.to_owned(), "gauge"),
        Some("histogram") => (name.to_owned(), "histogram"),
        Some("summary") => (name.to_owned(), "summary"),
        _ => (name.to_owned(), "untyped"),
    };
    let mut out = String::with_capacity(openmetrics.len());
    for line in openmetrics.lines() {
        if line == "# EOF" || line.starts_with("# UNIT ") {
            continue;
        }
        if let Some(rest) = line.strip_prefix("# HELP ") {
            let (name, help) = rest.split_once(' ').unwrap_or((rest, ""));
            out.push_str(&format!("# HELP {} {help}\n", renamed(name).0));
        } else if let Some(rest) = line.strip_prefix("# TYPE ") {
            let name = rest.split_once(' ').map_or(rest, |(name, _)| name);
            let (name, kind) = renamed(name);
            out.push_str(&format!("# TYPE {name} {kind}\n"));
        } else {
            out.push_str(line);
            out.push('\n');
        }
    }
    out
}

/// Encodes `registry` for a client that sent `accept`: the content type and the body.
pub(crate) fn encode(
    registry: &Registry,
    accept: Option<&str>,
) -> Result<(&'static str, String), std::fmt::Error> {
    let mut text = String::new();
    prometheus_client::encoding::text::encode(&mut text, registry)?;
    Ok(if wants_openmetrics(accept) {
        (OPENMETRICS, text)
    } else {
        (PROMETHEUS_TEXT, to_prometheus_text(&text))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counters_and_infos_are_named_by_their_series_in_prometheus_text() {
        let openmetrics = "# HELP joule_blocks Blocks.\n# TYPE joule_blocks counter\njoule_blocks_total 3\n# HELP joule_build Build.\n# TYPE joule_build info\njoule_build_info{version=\"0.1.0\"} 1\n# HELP joule_age Age.\n# TYPE joule_age gauge\n# UNIT joule_age seconds\njoule_age 1.5\n# EOF\n";
        assert_eq!(
            to_prometheus_text(openmetrics),
            "# HELP joule_blocks_total Blocks.\n# TYPE joule_blocks_total counter\njoule_blocks_total 3\n# HELP joule_build_info Build.\n# TYPE joule_build_info gauge\njoule_build_info{version=\"0.1.0\"} 1\n# HELP joule_age Age.\n# TYPE joule_age gauge\njoule_age 1.5\n"
        );
    }

    #[test]
    fn openmetrics_only_for_clients_that_ask() {
        let prometheus = "application/openmetrics-text;version=1.0.0;q=0.5,application/openmetrics-text;version=0.0.1;q=0.4,text/plain;version=0.0.4;q=0.3,*/*;q=0.1";
        assert!(wants_openmetrics(Some(prometheus)));
        assert!(!wants_openmetrics(Some("text/plain")));
        assert!(!wants_openmetrics(Some("*/*")));
        assert!(!wants_openmetrics(None));
        assert!(!wants_openmetrics(Some("application/openmetrics-text;q=0")));
    }

    #[test]
    fn process_stats_come_from_proc() {
        let stat = "42 (joule node (x)) S 1 42 42 0 -1 4194560 100 0 0 0 250 50 0 0 20 0 7 0 1000 104857600 2560 18446744073709551615";
        let limits = "Limit                     Soft Limit           Hard Limit           Units\nMax open files            1024                 4096                 files\n";
        let stats = parse_process(stat, 1_700_000_000, limits, 100.0, 4096);
        assert_eq!(
            stats,
            ProcessStats {
                cpu_seconds: 3.0,
                resident_bytes: 2560 * 4096,
                virtual_bytes: 104_857_600,
                threads: 7,
                start_time_seconds: 1_700_000_010.0,
                open_fds: 0,
                max_fds: 1024,
            }
        );
        let live = process_stats().unwrap();
        assert!(live.resident_bytes > 0 && live.threads > 0 && live.open_fds > 0, "{live:?}");
    }
}
