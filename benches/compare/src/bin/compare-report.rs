//! `compare-report <results.jsonl> [--meta meta.json] [--md table.md]
//! [--json summary.json] [--chart chart.png --font font.ttf]`
//!
//! Reads the JSON lines of a run, groups them by placement, mode and client,
//! and prints (and writes) medians with min–max, the ratio of each median to
//! `raw`'s, resource use, the idle cost per connection, and the issue's
//! targets with met / not met. Optionally draws the ratios as a PNG chart.
//!
//! The `-tls` modes (the same over HTTPS, raw being a rustls loop there) are
//! rows of their own in the throughput, ratio and resource tables and a
//! second panel of the chart; they are for information: no target reads
//! them.
//!
//! The `-h2` modes (seq and conc over HTTP/2; raw runs its HTTP/1.1 rustls
//! loop there, so their ratios are to raw TLS) are rows of their own too, a
//! third panel of the chart, a table of connections, threads and RSS, and
//! targets of their own: nethttp ≥ Go's ratio (must), ≥ reqwest's (aim).

use serde_json::{Value, json};
use std::{collections::BTreeMap, fmt::Write as _, fs, process};

const CLIENT_ORDER: [&str; 5] = ["raw", "nethttp", "ureq", "reqwest", "go"];
const MODE_ORDER: [&str; 11] = [
    "seq",
    "conc",
    "fresh",
    "download",
    "seq-tls",
    "conc-tls",
    "fresh-tls",
    "download-tls",
    "seq-h2",
    "conc-h2",
    "conc128-h2",
];
/// The HTTP/2 modes: targets against Go (must) and reqwest (aim).
const H2_MODES: [&str; 3] = ["seq-h2", "conc-h2", "conc128-h2"];
/// The plain-HTTP modes: the ones the targets are about.
const PLAIN_MODES: [&str; 4] = ["seq", "conc", "fresh", "download"];
const PLACEMENT_ORDER: [&str; 3] = ["two-cpu", "one-cpu", "none"];

/// Go net/http's ratios to raw from the issue (used when Go is not measured
/// in the same run): (mode, one-cpu, two-cpu).
const GO_FLOOR: [(&str, f64, f64); 3] = [
    ("seq", 0.62, 0.95),
    ("conc", 0.63, 0.53),
    ("fresh", 0.59, 0.54),
];

fn placement_title(p: &str) -> &str {
    match p {
        "two-cpu" => "two CPUs (nginx on CPU0, client on CPU1)",
        "one-cpu" => "one CPU (nginx and client both on CPU0)",
        _ => "unpinned",
    }
}

/// A `-tls` mode (HTTPS).
fn is_tls(m: &str) -> bool {
    m.ends_with("-tls")
}

/// A `-h2` mode (HTTP/2 over TLS; raw is its HTTP/1.1 TLS loop).
fn is_h2(m: &str) -> bool {
    m.ends_with("-h2")
}

/// The chart panel a mode belongs to: 0 plain, 1 `-tls`, 2 `-h2`.
fn panel_of(m: &str) -> usize {
    if is_h2(m) {
        2
    } else if is_tls(m) {
        1
    } else {
        0
    }
}

/// download and download-tls: measured in MB/s, not req/s.
fn is_download(m: &str) -> bool {
    m == "download" || m == "download-tls"
}

/// The unit of a mode's throughput, and the field of a run that holds it.
fn unit(m: &str) -> (&'static str, &'static str) {
    if is_download(m) {
        ("MB/s", "mb_per_s")
    } else {
        ("req/s", "req_per_s")
    }
}

fn placement_short(p: &str) -> &str {
    match p {
        "two-cpu" => "2 CPUs",
        "one-cpu" => "1 CPU",
        _ => "unpinned",
    }
}

#[derive(Debug, Clone, Copy)]
struct Stats {
    median: f64,
    min: f64,
    max: f64,
    n: usize,
}

fn stats(mut v: Vec<f64>) -> Option<Stats> {
    if v.is_empty() {
        return None;
    }
    v.sort_by(|a, b| a.total_cmp(b));
    let n = v.len();
    let median = if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    };
    Some(Stats {
        median,
        min: v[0],
        max: v[n - 1],
        n,
    })
}

/// Rows of one (placement, mode, client).
type Key = (String, String, String);

struct Data {
    rows: BTreeMap<Key, Vec<Value>>,
    placements: Vec<String>,
    clients: Vec<String>,
}

impl Data {
    /// The runs of one (placement, mode, client).
    fn runs(&self, p: &str, m: &str, c: &str) -> &[Value] {
        self.rows
            .get(&(p.to_string(), m.to_string(), c.to_string()))
            .map_or(&[], Vec::as_slice)
    }

    fn values(&self, p: &str, m: &str, c: &str, field: &str) -> Vec<f64> {
        self.runs(p, m, c)
            .iter()
            .filter_map(|r| r[field].as_f64())
            .collect()
    }

    /// The throughput figure of a mode: MB/s for download, req/s otherwise.
    fn speed(&self, p: &str, m: &str, c: &str) -> Option<Stats> {
        stats(self.values(p, m, c, unit(m).1))
    }

    fn ratio(&self, p: &str, m: &str, c: &str) -> Option<f64> {
        let raw = self.speed(p, m, "raw")?;
        let me = self.speed(p, m, c)?;
        Some(me.median / raw.median)
    }

    /// Ratios of each run to raw's run of the same round (interleaved, so
    /// both saw the same background load): median and min–max.
    fn paired(&self, p: &str, m: &str, c: &str) -> Option<Stats> {
        let field = unit(m).1;
        let raw = self.runs(p, m, "raw");
        let mut ratios = Vec::new();
        for r in self.runs(p, m, c) {
            let round = r["round"].as_u64();
            if let (Some(v), Some(base)) = (
                r[field].as_f64(),
                raw.iter()
                    .find(|x| x["round"].as_u64() == round)
                    .and_then(|x| x[field].as_f64()),
            ) {
                ratios.push(v / base);
            }
        }
        stats(ratios)
    }

    fn idle(&self, c: &str, field: &str) -> Option<Stats> {
        // Idle runs in the first placement that has it.
        self.placements
            .iter()
            .find_map(|p| stats(self.values(p, "idle", c, field)))
    }
}

fn human(x: f64) -> String {
    if x >= 100_000.0 {
        format!("{:.0}k", x / 1000.0)
    } else if x >= 10_000.0 {
        format!("{:.1}k", x / 1000.0)
    } else if x >= 100.0 {
        format!("{x:.0}")
    } else {
        format!("{x:.1}")
    }
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let mut input = None;
    let mut opt = BTreeMap::new();
    let mut i = 0;
    while i < args.len() {
        if let Some(name) = args[i].strip_prefix("--") {
            let v = args.get(i + 1).cloned().unwrap_or_else(|| {
                eprintln!("--{name} needs a value");
                process::exit(2)
            });
            opt.insert(name.to_string(), v);
            i += 2;
        } else {
            input = Some(args[i].clone());
            i += 1;
        }
    }
    let Some(input) = input else {
        eprintln!(
            "usage: compare-report <results.jsonl> [--meta F] [--md F] [--json F] [--chart F --font F]"
        );
        process::exit(2);
    };
    let text = fs::read_to_string(&input).unwrap_or_else(|e| {
        eprintln!("{input}: {e}");
        process::exit(2)
    });
    let meta: Value = opt
        .get("meta")
        .and_then(|f| fs::read_to_string(f).ok())
        .and_then(|s| serde_json::from_str(&s).ok())
        .unwrap_or(Value::Null);

    let mut rows: BTreeMap<Key, Vec<Value>> = BTreeMap::new();
    for line in text.lines().filter(|l| !l.trim().is_empty()) {
        let v: Value = match serde_json::from_str(line) {
            Ok(v) => v,
            Err(e) => {
                eprintln!("skipping a bad line ({e}): {line}");
                continue;
            }
        };
        let key = (
            v["placement"].as_str().unwrap_or("none").to_string(),
            v["mode"].as_str().unwrap_or("?").to_string(),
            v["client"].as_str().unwrap_or("?").to_string(),
        );
        rows.entry(key).or_default().push(v);
    }
    let placements: Vec<String> = PLACEMENT_ORDER
        .iter()
        .filter(|p| rows.keys().any(|k| k.0 == **p))
        .map(|p| p.to_string())
        .collect();
    let clients: Vec<String> = CLIENT_ORDER
        .iter()
        .filter(|c| rows.keys().any(|k| k.2 == **c))
        .map(|c| c.to_string())
        .collect();
    let data = Data {
        rows,
        placements,
        clients,
    };

    let md = markdown(&data, &meta);
    print!("{md}");
    if let Some(f) = opt.get("md") {
        fs::write(f, &md).unwrap_or_else(|e| eprintln!("{f}: {e}"));
    }
    if let Some(f) = opt.get("json") {
        let s = serde_json::to_string_pretty(&summary(&data, &meta)).expect("json");
        fs::write(f, s + "\n").unwrap_or_else(|e| eprintln!("{f}: {e}"));
    }
    if let Some(f) = opt.get("chart") {
        let font = opt
            .get("font")
            .cloned()
            .unwrap_or_else(|| "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf".into());
        if let Err(e) = chart(&data, &meta, f, &font) {
            eprintln!("chart {f}: {e}");
            process::exit(1);
        }
        eprintln!("chart written to {f}");
    }
}

fn modes_present(d: &Data, p: &str) -> Vec<&'static str> {
    MODE_ORDER
        .iter()
        .copied()
        .filter(|m| {
            d.speed(p, m, "raw").is_some() || d.clients.iter().any(|c| d.speed(p, m, c).is_some())
        })
        .collect()
}

/// Appends a Markdown table: a header of `first` and one column per `cols`,
/// its `|---|` line, a row per (label, cells) with "–" for a missing cell,
/// then a blank line.
fn table<C: std::fmt::Display>(
    s: &mut String,
    first: &str,
    cols: &[C],
    rows: impl IntoIterator<Item = (String, Vec<Option<String>>)>,
) {
    let _ = write!(s, "| {first} |");
    for c in cols {
        let _ = write!(s, " {c} |");
    }
    let _ = write!(s, "\n|---|");
    for _ in cols {
        let _ = write!(s, "---|");
    }
    s.push('\n');
    for (label, cells) in rows {
        let _ = write!(s, "| {label} |");
        for cell in cells {
            let _ = write!(s, " {} |", cell.as_deref().unwrap_or("–"));
        }
        s.push('\n');
    }
    s.push('\n');
}

fn markdown(d: &Data, meta: &Value) -> String {
    let mut s = String::new();
    if !meta.is_null() {
        let _ = writeln!(
            s,
            "Run of {} on {} × {} ({} GiB class), Linux {}, nginx {}, {}, Go {}; nethttp at `{}`; {} round(s); counts: {}.\n",
            meta["date"].as_str().unwrap_or("?"),
            meta["ncpu"],
            meta["cpu"].as_str().unwrap_or("?"),
            meta["mem"].as_str().unwrap_or("?").trim_end_matches(" GiB"),
            meta["kernel"].as_str().unwrap_or("?"),
            meta["nginx"].as_str().unwrap_or("?"),
            meta["rustc"].as_str().unwrap_or("?"),
            meta["go"].as_str().unwrap_or("none"),
            meta["nethttp"].as_str().unwrap_or("?"),
            meta["rounds"],
            meta["counts"].as_str().unwrap_or("?"),
        );
    }
    if d.rows.keys().any(|k| is_tls(&k.1)) {
        let _ = writeln!(
            s,
            "The `-tls` rows are the same runs over HTTPS to the same nginx ({}; a throwaway CA and ECDSA P-256 certificate made at start); raw is a rustls keep-alive loop there. They are for information: no target reads them.\n",
            meta["tls"].as_str().unwrap_or("TLS 1.3, resumption off")
        );
    }
    if d.rows.keys().any(|k| is_h2(&k.1)) {
        let _ = writeln!(
            s,
            "The `-h2` rows are seq and conc over HTTP/2 (TLS, ALPN h2) to a third nginx port ({}); every response of nethttp, reqwest and Go was checked to be HTTP/2. raw speaks no HTTP/2: its `-h2` runs are its HTTP/1.1 rustls loop on the `-tls` port, so the `-h2` ratios are to raw TLS. ureq 3 has no HTTP/2 and sits them out.\n",
            meta["alpn"].as_str().unwrap_or("ALPN not probed")
        );
    }
    // Speed tables, one per placement.
    for p in &d.placements {
        let _ = writeln!(
            s,
            "#### Throughput, {}\n\nMedian (min–max) req/s, MB/s for download; **ratio to raw** in bold.\n",
            placement_title(p)
        );
        let rows = modes_present(d, p).into_iter().map(|m| {
            let unit = unit(m).0;
            let cells = d.clients.iter().map(|c| {
                let st = d.speed(p, m, c)?;
                let ratio = d
                    .ratio(p, m, c)
                    .map(|r| format!(" **{r:.2}×**"))
                    .unwrap_or_default();
                Some(format!(
                    "{} ({}–{}){ratio}",
                    human(st.median),
                    human(st.min),
                    human(st.max)
                ))
            });
            (format!("{m} ({unit})"), cells.collect())
        });
        table(&mut s, "mode", &d.clients, rows);
    }
    // Paired ratios.
    if d.placements.iter().any(|p| p != "none") && d.clients.iter().any(|c| c == "raw") {
        let _ = writeln!(
            s,
            "#### Ratio to raw, round by round\n\nEach run divided by raw's run of the same round (interleaved, so both saw the same background load): median (min–max).\n"
        );
        let others: Vec<&String> = d.clients.iter().filter(|c| *c != "raw").collect();
        let mut rows = Vec::new();
        for m in MODE_ORDER {
            for p in &d.placements {
                if d.speed(p, m, "raw").is_none() {
                    continue;
                }
                let cells = others.iter().map(|c| {
                    let st = d.paired(p, m, c)?;
                    Some(format!("{:.2} ({:.2}–{:.2})", st.median, st.min, st.max))
                });
                rows.push((format!("{m}, {}", placement_short(p)), cells.collect()));
            }
        }
        table(&mut s, "mode, placement", &others, rows);
    }
    // Resources.
    if let Some(p) = d.placements.first() {
        let _ = writeln!(
            s,
            "#### Peak RSS and peak threads, {} (medians)\n",
            placement_title(p)
        );
        let rows = modes_present(d, p).into_iter().map(|m| {
            let cells = d.clients.iter().map(|c| {
                let rss = stats(d.values(p, m, c, "peak_rss_kib"))?;
                let thr = stats(d.values(p, m, c, "peak_threads"))?;
                Some(format!(
                    "{:.1} MiB, {:.0} thr",
                    rss.median / 1024.0,
                    thr.median
                ))
            });
            (m.to_string(), cells.collect())
        });
        table(&mut s, "mode", &d.clients, rows);
    }
    // Idle.
    if d.clients
        .iter()
        .any(|c| d.idle(c, "idle_cost_per_conn_kib").is_some())
    {
        let _ = writeln!(
            s,
            "#### Idle pooled connections (medians)\n\nCost per connection = RSS added / connections + threads per connection × 16 KiB kernel stack.\n"
        );
        let _ = writeln!(
            s,
            "| client | idle conns | RSS / conn | threads / conn | kernel stack / conn | **cost / conn** |\n|---|---|---|---|---|---|"
        );
        for c in &d.clients {
            let get = |f: &str| d.idle(c, f).map(|st| st.median);
            if let Some(cost) = get("idle_cost_per_conn_kib") {
                let _ = writeln!(
                    s,
                    "| {c} | {:.0} | {:.1} KiB | {:.2} | {:.1} KiB | **{cost:.1} KiB** |",
                    get("idle_conns").unwrap_or(0.0),
                    get("rss_per_conn_kib").unwrap_or(0.0),
                    get("threads_per_conn").unwrap_or(0.0),
                    get("kernel_stack_per_conn_kib").unwrap_or(0.0),
                );
            }
        }
        s.push('\n');
    }
    s.push_str(&h2_resources(d));
    s.push_str(&targets(d));
    s
}

/// The `-h2` modes' resources, per placement: peak RSS and threads
/// (medians), the process's sockets (max over runs of the sampled peak,
/// and at the end of the run) and, for nethttp, `Transport::stats()`'s
/// connections and threads (max over runs of the sampled peak).
fn h2_resources(d: &Data) -> String {
    let mut s = String::new();
    let max = |v: Vec<f64>| v.into_iter().reduce(f64::max);
    for p in &d.placements {
        let modes: Vec<&str> = modes_present(d, p)
            .into_iter()
            .filter(|m| is_h2(m))
            .collect();
        if modes.is_empty() {
            continue;
        }
        let _ = writeln!(
            s,
            "#### HTTP/2 connections, threads and RSS, {}\n\nPeak RSS and peak process threads (warm-up included): medians over runs. Sockets: the process's, sampled every 50 ms: peak over the whole run (warm-up included) / peak over the timed part / count at the end, each the max over runs (raw: one HTTP/1.1 connection per thread, not sampled). pool: nethttp's `Transport::stats()` sampled every 5 ms: conns / threads, peak over the whole run and (in brackets) over the timed part, max over runs.\n",
            placement_title(p)
        );
        let rows = modes.into_iter().map(|m| {
            let cells = d.clients.iter().map(|c| {
                let rss = stats(d.values(p, m, c, "peak_rss_kib"))?;
                let thr = stats(d.values(p, m, c, "peak_threads"))?;
                let mut cell = format!("{:.1} MiB, {:.0} thr", rss.median / 1024.0, thr.median);
                let g = |f: &str| max(d.values(p, m, c, f));
                if let (Some(a), Some(t), Some(b)) =
                    (g("peak_sockets"), g("timed_peak_sockets"), g("end_sockets"))
                {
                    let _ = write!(cell, ", sockets {a:.0} / {t:.0} / {b:.0}");
                }
                if let (Some(a), Some(b), Some(ta), Some(tb)) = (
                    g("pool_peak_conns"),
                    g("pool_peak_threads"),
                    g("pool_timed_peak_conns"),
                    g("pool_timed_peak_threads"),
                ) {
                    let _ = write!(cell, ", pool {a:.0} conn / {b:.0} thr ({ta:.0} / {tb:.0})");
                }
                Some(cell)
            });
            (m.to_string(), cells.collect())
        });
        table(&mut s, "mode", &d.clients, rows);
    }
    s
}

/// One target check: (what, measured, wanted, met).
fn target_rows(d: &Data) -> Vec<(String, String, String, Option<bool>, bool)> {
    // (label, nethttp, floor, met, is_must)
    let mut out = Vec::new();
    let go_measured = d.clients.iter().any(|c| c == "go");
    for p in d.placements.iter().filter(|p| *p != "none") {
        for (m, one, two) in GO_FLOOR {
            let Some(me) = d.ratio(p, m, "nethttp") else {
                continue;
            };
            let fixed = if p == "one-cpu" { one } else { two };
            let (floor, src) = match d.ratio(p, m, "go").filter(|_| go_measured) {
                Some(g) => (g, "Go measured"),
                None => (fixed, "Go, issue figure"),
            };
            out.push((
                format!("{m}, {}: ≥ Go", placement_short(p)),
                format!("{me:.2}×"),
                format!("{floor:.2}× ({src}; issue figure {fixed:.2}×)"),
                Some(me >= floor),
                true,
            ));
        }
        if let Some(me) = d.ratio(p, "download", "nethttp") {
            out.push((
                format!("download, {}: ≥ 0.95×", placement_short(p)),
                format!("{me:.2}×"),
                "0.95×".into(),
                Some(me >= 0.95),
                true,
            ));
        }
    }
    if let Some(cost) = d.idle("nethttp", "idle_cost_per_conn_kib") {
        out.push((
            "idle cost per pooled connection ≤ 64 KiB".into(),
            format!("{:.1} KiB", cost.median),
            "64 KiB".into(),
            Some(cost.median <= 64.0),
            true,
        ));
    }
    for p in d.placements.iter().filter(|p| *p != "none") {
        let me = stats(d.values(p, "conc", "nethttp", "peak_rss_kib"));
        let ureq = stats(d.values(p, "conc", "ureq", "peak_rss_kib"));
        if let (Some(me), Some(u)) = (me, ureq) {
            out.push((
                format!("conc peak RSS ≤ ureq's, {}", placement_short(p)),
                format!("{:.1} MiB", me.median / 1024.0),
                format!("{:.1} MiB (ureq)", u.median / 1024.0),
                Some(me.median <= u.median),
                true,
            ));
        }
    }
    for p in d.placements.iter().filter(|p| *p != "none") {
        for m in H2_MODES {
            let Some(me) = d.ratio(p, m, "nethttp") else {
                continue;
            };
            if let Some(g) = d.ratio(p, m, "go") {
                out.push((
                    format!("{m}, {}: ≥ Go (ratio to raw TLS)", placement_short(p)),
                    format!("{me:.2}×"),
                    format!("{g:.2}× (Go measured)"),
                    Some(me >= g),
                    true,
                ));
            }
            if let Some(r) = d.ratio(p, m, "reqwest") {
                out.push((
                    format!("aim: {m}, {}: ≥ reqwest", placement_short(p)),
                    format!("{me:.2}×"),
                    format!("{r:.2}× (reqwest)"),
                    Some(me >= r),
                    false,
                ));
            }
        }
    }
    for p in d.placements.iter().filter(|p| *p != "none") {
        for m in PLAIN_MODES {
            if let (Some(me), Some(u)) = (d.ratio(p, m, "nethttp"), d.ratio(p, m, "ureq")) {
                out.push((
                    format!("aim: {m}, {}: ≥ ureq", placement_short(p)),
                    format!("{me:.2}×"),
                    format!("{u:.2}× (ureq)"),
                    Some(me >= u),
                    false,
                ));
            }
        }
    }
    out
}

fn targets(d: &Data) -> String {
    let rows = target_rows(d);
    if rows.is_empty() {
        return String::new();
    }
    let mut s = String::from(
        "#### Targets of the issue (nethttp, medians of this run)\n\n| target | nethttp | wanted | met? |\n|---|---|---|---|\n",
    );
    for (label, me, want, met, _) in rows {
        let verdict = match met {
            Some(true) => "yes",
            Some(false) => "**no**",
            None => "–",
        };
        let _ = writeln!(s, "| {label} | {me} | {want} | {verdict} |");
    }
    s.push('\n');
    s
}

fn summary(d: &Data, meta: &Value) -> Value {
    let mut speed = Vec::new();
    for p in &d.placements {
        for m in MODE_ORDER {
            for c in &d.clients {
                if let Some(st) = d.speed(p, m, c) {
                    let rss = stats(d.values(p, m, c, "peak_rss_kib"));
                    let thr = stats(d.values(p, m, c, "peak_threads"));
                    speed.push(json!({
                        "placement": p, "mode": m, "client": c,
                        "unit": unit(m).0,
                        "median": st.median, "min": st.min, "max": st.max, "runs": st.n,
                        "ratio_to_raw": d.ratio(p, m, c),
                        "paired_ratio": d.paired(p, m, c).map(|s| json!({"median": s.median, "min": s.min, "max": s.max})),
                        "peak_rss_kib_median": rss.map(|s| s.median),
                        "peak_threads_median": thr.map(|s| s.median),
                        "peak_sockets_max": d.values(p, m, c, "peak_sockets").into_iter().reduce(f64::max),
                        "timed_peak_sockets_max": d.values(p, m, c, "timed_peak_sockets").into_iter().reduce(f64::max),
                        "pool_timed_peak_conns_max": d.values(p, m, c, "pool_timed_peak_conns").into_iter().reduce(f64::max),
                        "pool_timed_peak_threads_max": d.values(p, m, c, "pool_timed_peak_threads").into_iter().reduce(f64::max),
                        "end_sockets_max": d.values(p, m, c, "end_sockets").into_iter().reduce(f64::max),
                        "pool_peak_conns_max": d.values(p, m, c, "pool_peak_conns").into_iter().reduce(f64::max),
                        "pool_peak_threads_max": d.values(p, m, c, "pool_peak_threads").into_iter().reduce(f64::max),
                    }));
                }
            }
        }
    }
    let mut idle = Vec::new();
    for c in &d.clients {
        if let Some(cost) = d.idle(c, "idle_cost_per_conn_kib") {
            let g = |f: &str| d.idle(c, f).map(|s| s.median);
            idle.push(json!({
                "client": c,
                "idle_conns": g("idle_conns"),
                "rss_per_conn_kib": g("rss_per_conn_kib"),
                "threads_per_conn": g("threads_per_conn"),
                "kernel_stack_per_conn_kib": g("kernel_stack_per_conn_kib"),
                "idle_cost_per_conn_kib": cost.median,
            }));
        }
    }
    let targets: Vec<Value> = target_rows(d)
        .into_iter()
        .map(|(label, me, want, met, must)| {
            json!({"target": label, "nethttp": me, "wanted": want, "met": met, "must": must})
        })
        .collect();
    json!({"meta": meta, "speed": speed, "idle": idle, "targets": targets})
}

fn client_color(c: &str) -> plotters::style::RGBColor {
    use plotters::style::RGBColor;
    match c {
        "nethttp" => RGBColor(214, 69, 65),
        "ureq" => RGBColor(52, 120, 198),
        "reqwest" => RGBColor(90, 170, 90),
        "go" => RGBColor(0, 173, 216),
        _ => RGBColor(120, 120, 120),
    }
}

fn chart(d: &Data, meta: &Value, path: &str, font: &str) -> Result<(), Box<dyn std::error::Error>> {
    use plotters::prelude::*;
    use plotters::style::{FontStyle, register_font};

    let bytes: &'static [u8] = Box::leak(fs::read(font)?.into_boxed_slice());
    register_font("sans-serif", FontStyle::Normal, bytes).map_err(|_| "cannot load the font")?;

    let bars: Vec<&String> = d.clients.iter().filter(|c| *c != "raw").collect();
    // One panel for plain HTTP, one for the -tls modes and one for the -h2
    // modes (when they ran).
    let mut panels: Vec<Vec<(String, String)>> = Vec::new();
    for kind in 0..3 {
        let mut groups = Vec::new();
        for m in MODE_ORDER.iter().filter(|m| panel_of(m) == kind) {
            for p in &d.placements {
                if d.speed(p, m, "raw").is_some() {
                    groups.push((m.to_string(), p.clone()));
                }
            }
        }
        if !groups.is_empty() {
            panels.push(groups);
        }
    }
    if panels.is_empty() || bars.is_empty() {
        return Err("nothing to draw".into());
    }

    let (w, h) = (1400u32, 720u32);
    let root = BitMapBackend::new(path, (w, h * panels.len() as u32)).into_drawing_area();
    root.fill(&WHITE)?;
    let date = meta["date"].as_str().unwrap_or("");
    let rev = meta["nethttp"].as_str().unwrap_or("?");
    for (area, groups) in root.split_evenly((panels.len(), 1)).iter().zip(&panels) {
        // Only the clients with a bar in this panel (ureq has no -h2 rows).
        let bars: Vec<&String> = bars
            .iter()
            .copied()
            .filter(|c| groups.iter().any(|(m, p)| d.ratio(p, m, c).is_some()))
            .collect();
        let title = if is_h2(&groups[0].0) {
            format!(
                "HTTP/2 over TLS: throughput / raw rustls HTTP/1.1 loop (median; whiskers: min–max) — nginx on 127.0.0.1, {date}, nethttp {rev}"
            )
        } else if is_tls(&groups[0].0) {
            format!(
                "HTTPS: throughput / raw rustls loop (median; whiskers: min–max) — nginx on 127.0.0.1, {date}, nethttp {rev}"
            )
        } else {
            format!(
                "Throughput / raw TcpStream loop (median; whiskers: min–max) — nginx on 127.0.0.1, {date}, nethttp {rev}"
            )
        };
        panel(d, &bars, groups, area, &title)?;
    }
    root.present()?;
    Ok(())
}

/// One bar chart of ratios to raw: a group of bars per (mode, placement).
fn panel(
    d: &Data,
    bars: &[&String],
    groups: &[(String, String)],
    area: &plotters::drawing::DrawingArea<plotters::prelude::BitMapBackend, plotters::coord::Shift>,
    title: &str,
) -> Result<(), Box<dyn std::error::Error>> {
    use plotters::prelude::*;

    let ymax = groups
        .iter()
        .flat_map(|(m, p)| {
            bars.iter().filter_map(|c| {
                let raw = d.speed(p, m, "raw")?;
                Some(d.speed(p, m, c)?.max / raw.median)
            })
        })
        .fold(1.1f64, f64::max)
        * 1.25; // headroom for the legend

    let mut chart = ChartBuilder::on(area)
        .caption(title, ("sans-serif", 22))
        .margin(16)
        .margin_bottom(70)
        .x_label_area_size(10)
        .y_label_area_size(60)
        .build_cartesian_2d(0f64..groups.len() as f64, 0f64..ymax)?;
    chart
        .configure_mesh()
        .disable_x_mesh()
        .disable_x_axis()
        .y_desc("ratio to raw")
        .y_label_style(("sans-serif", 16))
        .axis_desc_style(("sans-serif", 16))
        .light_line_style(RGBColor(235, 235, 235))
        .draw()?;

    let nb = bars.len() as f64;
    let width = 0.8 / nb;
    for (bi, c) in bars.iter().enumerate() {
        let color = client_color(c);
        let mut rects = Vec::new();
        let mut labels = Vec::new();
        let mut whiskers = Vec::new();
        for (gi, (m, p)) in groups.iter().enumerate() {
            if let Some(r) = d.ratio(p, m, c) {
                let x0 = gi as f64 + 0.1 + bi as f64 * width;
                rects.push(Rectangle::new(
                    [(x0, 0.0), (x0 + width * 0.92, r)],
                    color.filled(),
                ));
                // min–max of this client's runs, over raw's median.
                let mut top = r;
                if let (Some(me), Some(raw)) = (d.speed(p, m, c), d.speed(p, m, "raw"))
                    && me.n > 1
                {
                    let (lo, hi) = (me.min / raw.median, me.max / raw.median);
                    let xm = x0 + width * 0.46;
                    let (xa, xb) = (x0 + width * 0.3, x0 + width * 0.62);
                    let ink = RGBColor(40, 40, 40).stroke_width(1);
                    whiskers.push(PathElement::new(vec![(xm, lo), (xm, hi)], ink));
                    whiskers.push(PathElement::new(vec![(xa, lo), (xb, lo)], ink));
                    whiskers.push(PathElement::new(vec![(xa, hi), (xb, hi)], ink));
                    top = top.max(hi);
                }
                labels.push(Text::new(
                    format!("{r:.2}"),
                    (x0 + width * 0.05, top + ymax * 0.012),
                    ("sans-serif", 13).into_font().color(&BLACK),
                ));
            }
        }
        chart
            .draw_series(rects)?
            .label(c.as_str())
            .legend(move |(x, y)| Rectangle::new([(x, y - 6), (x + 14, y + 6)], color.filled()));
        chart.draw_series(whiskers)?;
        chart.draw_series(labels)?;
    }
    // raw = 1.0
    chart
        .draw_series(LineSeries::new(
            vec![(0.0, 1.0), (groups.len() as f64, 1.0)],
            BLACK.stroke_width(1),
        ))?
        .label("raw = 1.0")
        .legend(|(x, y)| PathElement::new(vec![(x, y), (x + 14, y)], BLACK.stroke_width(2)));
    // Group separators between modes.
    for gi in 1..groups.len() {
        if groups[gi].0 != groups[gi - 1].0 {
            let x = gi as f64;
            chart.draw_series(LineSeries::new(
                vec![(x, 0.0), (x, ymax)],
                RGBColor(180, 180, 180).stroke_width(1),
            ))?;
        }
    }
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::UpperRight)
        .background_style(WHITE.mix(0.9))
        .border_style(RGBColor(200, 200, 200))
        .label_font(("sans-serif", 16))
        .draw()?;
    // Group labels under the axis, in pixel coordinates of the panel's area
    // (backend_coord gives the whole image's).
    let (bx, by) = area.get_base_pixel();
    for (gi, (m, p)) in groups.iter().enumerate() {
        let (px, py) = chart.backend_coord(&(gi as f64 + 0.5, 0.0));
        let (px, py) = (px - bx, py - by);
        let unit = if is_download(m) { " (MB/s)" } else { "" };
        let l1 = format!("{m}{unit}");
        let l2 = placement_short(p).to_string();
        let style = ("sans-serif", 17).into_font().color(&BLACK);
        let est = |t: &str, size: f64| (t.chars().count() as f64 * size * 0.28) as i32;
        area.draw(&Text::new(
            l1.clone(),
            (px - est(&l1, 17.0), py + 10),
            style.clone(),
        ))?;
        area.draw(&Text::new(
            l2.clone(),
            (px - est(&l2, 16.0), py + 32),
            ("sans-serif", 16).into_font().color(&RGBColor(80, 80, 80)),
        ))?;
    }
    Ok(())
}
