//! Connectors against the real broker and registry: Shopify webhooks (bad
//! signatures refused, a kill -9 of the receiver mid-burst loses no
//! acknowledged order), the Admin REST poller against the simulator
//! (pagination, 429s, durable cursor), and normalize end to end to
//! `orders.normalized` decoded through the registry.

mod common;

use std::collections::{BTreeSet, HashMap};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

use common::stream::{read_all, wait_until, PARTITIONS};
use conveyor_connectors::publish::RawPublisher;
use conveyor_connectors::shopify::poller::{self, Poller};
use conveyor_connectors::simulate::shopify as sim;
use conveyor_runtime::kafka::Consumer;
use conveyor_runtime::topology::Topology;
use conveyor_schemas::codec::{Codec, Source};
use conveyor_schemas::records::{OrderEvent, OrderEventKind};
use tokio_util::sync::CancellationToken;

const SECRETS: &str = r#"["new-secret","old-secret"]"#;

fn conveyor(ns: &str, state: &Path, args: &[&str], log: &Path) -> Child {
    Command::new(env!("CARGO_BIN_EXE_conveyor"))
        .args(args)
        .env("CONVEYOR_TOPICS__NAMESPACE", ns)
        .env("CONVEYOR_STATE__DIR", state)
        .env("CONVEYOR_CHANNELS__SHOPIFY__WEBHOOK_SECRETS", SECRETS)
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(log).unwrap())
        .spawn()
        .unwrap()
}

fn kill(child: &mut Child, signal: i32) {
    // SAFETY: signalling our own child.
    unsafe { libc::kill(child.id() as i32, signal) };
    let _ = child.wait();
}

async fn wait_listening(port: u16) {
    wait_until(
        "the webhook receiver to listen",
        Duration::from_secs(60),
        || std::net::TcpStream::connect(("127.0.0.1", port)).is_ok(),
    )
    .await;
}

fn count(probe: &Consumer, topic: &str) -> i64 {
    probe
        .end_offsets_total(topic, PARTITIONS, Duration::from_secs(10))
        .unwrap_or(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shopify_webhooks_survive_a_kill9_and_normalize_end_to_end() {
    let ns = common::unique("it.shopify");
    let mut config = common::config();
    config.topics.namespace = ns.clone();
    common::require_broker(&config).await;
    let topo = Topology::resolve(&config);
    let raw_topic = topo.raw_topic("shopify").unwrap().to_string();
    let normalized = topo.topic_name("orders_normalized").unwrap().to_string();
    let dir = tempfile::tempdir().unwrap();
    let log = |n: &str| dir.path().join(n);
    // The topology's topics first, as an operator would (a probe that looks
    // at a topic before it exists keeps a stale "unknown topic" for minutes).
    let status = Command::new(env!("CARGO_BIN_EXE_conveyor"))
        .args(["topics", "create"])
        .env("CONVEYOR_TOPICS__NAMESPACE", &ns)
        .stdout(Stdio::null())
        .status()
        .unwrap();
    assert!(status.success(), "topics create failed");
    let probe = Consumer::new(&config.kafka, "test-probe", &format!("{ns}.probe")).unwrap();

    let catalog = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/catalog.csv");
    let status = Command::new(env!("CARGO_BIN_EXE_conveyor"))
        .args(["catalog", "load", catalog.to_str().unwrap()])
        .env("CONVEYOR_TOPICS__NAMESPACE", &ns)
        .stdout(Stdio::null())
        .status()
        .unwrap();
    assert!(status.success(), "catalog load failed");

    let port = common::free_port();
    let bind = format!("127.0.0.1:{port}");
    let url = format!("http://{bind}/webhooks/shopify");
    let connect_args = [
        "connect",
        "shopify",
        "--bind",
        &bind,
        "--observability-bind",
        "127.0.0.1:0",
    ];
    let mut receiver = conveyor(&ns, dir.path(), &connect_args, &log("connect-1.log"));
    wait_listening(port).await;

    // Bad and missing signatures: 401, nothing published.
    let http = reqwest::Client::new();
    let (body, headers) = sim::webhook_request(0, "wrong-secret", "orders/create");
    let mut req = http.post(&url).body(body.clone());
    for (k, v) in &headers {
        req = req.header(*k, v);
    }
    assert_eq!(req.send().await.unwrap().status(), 401);
    let mut req = http.post(&url).body(body);
    for (k, v) in headers
        .iter()
        .filter(|(k, _)| *k != "x-shopify-hmac-sha256")
    {
        req = req.header(*k, v);
    }
    let r = req.send().await.unwrap();
    assert_eq!(r.status(), 401);
    assert!(r.text().await.unwrap().contains("signature"));
    // Signed, but not an order: 400.
    let junk = b"{\"not\":\"an order\"}".to_vec();
    let sig = conveyor_connectors::signature::sign_base64(b"old-secret", &junk);
    let r = http
        .post(&url)
        .header("x-shopify-hmac-sha256", sig)
        .header("x-shopify-topic", "orders/create")
        .header("x-shopify-webhook-id", "junk-1")
        .body(junk)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    assert_eq!(
        count(&probe, &raw_topic),
        0,
        "a refused webhook was published"
    );

    // 10k webhooks signed with the previous secret of a rotation; the
    // receiver is killed -9 mid-burst and restarted. Every webhook is
    // retried until acknowledged, like Shopify does.
    const N: u64 = 10_000;
    let burst = tokio::spawn({
        let url = url.clone();
        async move { sim::fire_webhooks(&url, "old-secret", 0..N, 16, 500).await }
    });
    wait_until("a third of the burst", Duration::from_secs(180), || {
        count(&probe, &raw_topic) >= (N / 3) as i64
    })
    .await;
    kill(&mut receiver, libc::SIGKILL);
    tokio::time::sleep(Duration::from_millis(500)).await;
    let mut receiver = conveyor(&ns, dir.path(), &connect_args, &log("connect-2.log"));
    let stats = burst.await.unwrap();
    assert_eq!(stats.acked, N, "{stats:?}");
    assert_eq!(stats.failed, 0);
    assert!(
        stats.retries > 0,
        "the kill should have cost some deliveries: {stats:?}"
    );

    // Every acknowledged order is in the raw topic (duplicates allowed).
    let raw = read_all(&config, &raw_topic).await;
    let keys: BTreeSet<Vec<u8>> = raw.iter().filter_map(|r| r.key.clone()).collect();
    assert_eq!(keys.len() as u64, N, "orders lost between ack and broker");
    assert!(raw.len() as u64 >= N);

    // A redelivery of 200 webhooks to the restarted receiver (which has no
    // memory of them) publishes again; normalize must drop them.
    let again = sim::fire_webhooks(&url, "new-secret", 0..200, 8, 50).await;
    assert_eq!(again.acked, 200);
    kill(&mut receiver, libc::SIGTERM);

    let mut normalize = conveyor(
        &ns,
        dir.path(),
        &["run", "normalize", "--observability-bind", "127.0.0.1:0"],
        &log("normalize.log"),
    );
    wait_until("every order normalized", Duration::from_secs(240), || {
        count(&probe, &normalized) >= N as i64
    })
    .await;
    // Let any late duplicate show up before counting exactly.
    tokio::time::sleep(Duration::from_secs(3)).await;
    kill(&mut normalize, libc::SIGTERM);

    let out = read_all(&config, &normalized).await;
    assert_eq!(
        out.len() as u64,
        N,
        "one event per order, duplicates dropped"
    );
    let codec = Arc::new(Codec::new(&config.schema_registry.url).unwrap());
    let mut seen = HashMap::new();
    for r in &out {
        let e: OrderEvent = codec
            .decode(
                r.payload.as_deref(),
                Source {
                    topic: &r.topic,
                    partition: r.partition,
                    offset: r.offset,
                },
            )
            .await
            .unwrap();
        assert_eq!(e.kind, OrderEventKind::Created);
        assert_eq!(r.key.as_deref(), Some(e.order_id.as_bytes()));
        assert!(e.order.lines.iter().all(|l| !l.sku.is_empty()));
        assert_eq!(e.order.shipping_address.country, "US");
        seen.insert(e.order_id.clone(), e);
    }
    assert_eq!(seen.len() as u64, N);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_poller_pages_honours_429_and_resumes_from_its_cursor() {
    let ns = common::unique("it.poller");
    let mut config = common::config();
    config.topics.namespace = ns.clone();
    common::require_broker(&config).await;
    let topo = Topology::resolve(&config);
    let raw_topic = topo.raw_topic("shopify").unwrap().to_string();
    common::stream::create(&config, &[&raw_topic]).await;

    // 600 orders, pages of 250, a bucket of one call leaking one per 3 s:
    // the second call is a 429.
    let shop = Arc::new(sim::Sim::new(600, "shpat_test").with_bucket(1.0, 1.0 / 3.0));
    let token = CancellationToken::new();
    let (addr, _task) = sim::serve(shop.clone(), "127.0.0.1:0".parse().unwrap(), token.clone())
        .await
        .unwrap();
    let mut sc = config.channels.shopify.clone();
    sc.api_url = format!("http://{addr}");
    sc.access_token = conveyor_runtime::config::Secret::new("shpat_test");
    sc.backfill_hours = 24 * 365 * 50; // everything the shop has
    let codec = Arc::new(Codec::new(&config.schema_registry.url).unwrap());
    let publisher = RawPublisher::new(&config, codec, "shopify", "test-poller").unwrap();
    let state = tempfile::tempdir().unwrap();
    let p = Poller::new(sc.clone(), publisher.clone(), state.path());
    let stats = p.pass(&token).await.unwrap();
    assert_eq!(stats.orders, 600);
    assert_eq!(stats.pages, 3);
    assert!(stats.throttled >= 1, "{stats:?} / {:?}", shop.counts());
    let cursor = poller::load_cursor(&poller::cursor_path(state.path()))
        .unwrap()
        .unwrap();
    let newest = (0..600)
        .map(|n| {
            conveyor_processors::normalize::shopify::example(n)["updated_at"]
                .as_str()
                .unwrap()
                .to_string()
        })
        .max()
        .unwrap();
    assert_eq!(cursor.updated_at_min, newest);

    // The next pass starts at the cursor: only the boundary order again.
    let again = Poller::new(sc.clone(), publisher.clone(), state.path())
        .pass(&token)
        .await
        .unwrap();
    assert_eq!(again.orders, 1);
    let raw = read_all(&config, &raw_topic).await;
    assert_eq!(raw.len(), 601);

    // A wrong token is an auth error naming the setting, and moves nothing.
    let mut bad = sc;
    bad.access_token = conveyor_runtime::config::Secret::new("nope");
    let e = Poller::new(bad, publisher, state.path())
        .pass(&token)
        .await
        .unwrap_err();
    assert!(e.to_string().contains("access_token"), "{e}");
    token.cancel();
}

/// Every raw record of `topic` normalizes with the example catalog.
fn all_normalize(
    raw: &[conveyor_runtime::kafka::InRecord],
    codec: &Codec,
) -> Vec<conveyor_processors::normalize::Normalized> {
    let catalog = conveyor_processors::catalog::Catalog::from_skus(
        conveyor_connectors::catalog_load::parse(include_bytes!("../examples/catalog.csv"), 1)
            .unwrap(),
    );
    let rt = tokio::runtime::Handle::current();
    raw.iter()
        .map(|r| {
            let env: conveyor_schemas::records::RawOrder = tokio::task::block_in_place(|| {
                rt.block_on(codec.decode(
                    r.payload.as_deref(),
                    Source {
                        topic: &r.topic,
                        partition: r.partition,
                        offset: r.offset,
                    },
                ))
            })
            .unwrap();
            conveyor_processors::normalize::normalize(&env, &catalog)
                .unwrap_or_else(|e| panic!("{}: {e}", env.external_order_id))
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_amazon_poller_pages_refreshes_tokens_and_honours_quotas() {
    use conveyor_connectors::amazon::{self, Poller as AmazonPoller};
    use conveyor_connectors::simulate::amazon as asim;
    let ns = common::unique("it.amazon");
    let mut config = common::config();
    config.topics.namespace = ns.clone();
    common::require_broker(&config).await;
    let raw_topic = Topology::resolve(&config)
        .raw_topic("amazon")
        .unwrap()
        .to_string();
    common::stream::create(&config, &[&raw_topic]).await;

    // getOrders: 0.5/s with a burst of 1, so the second page is a 429.
    let shop = Arc::new(
        asim::Sim::new(250, "amzn1.app", "app-secret", "Atzr|refresh")
            .with_rates((0.5, 1.0), (100.0, 5.0)),
    );
    let token = CancellationToken::new();
    let (addr, _task) = asim::serve(shop.clone(), "127.0.0.1:0".parse().unwrap(), token.clone())
        .await
        .unwrap();
    let mut ac = config.channels.amazon.clone();
    ac.api_url = format!("http://{addr}");
    ac.lwa_url = format!("http://{addr}/auth/o2/token");
    ac.client_id = "amzn1.app".into();
    ac.client_secret = conveyor_runtime::config::Secret::new("app-secret");
    ac.refresh_token = conveyor_runtime::config::Secret::new("Atzr|refresh");
    ac.backfill_hours = 24 * 365 * 50;
    let codec = Arc::new(Codec::new(&config.schema_registry.url).unwrap());
    let publisher = RawPublisher::new(&config, codec.clone(), "amazon", "test-amazon").unwrap();
    let state = tempfile::tempdir().unwrap();
    let p = AmazonPoller::new(ac.clone(), publisher.clone(), state.path());
    let stats = p.pass(&token).await.unwrap();
    // Every 13th example order is Canceled (polled); none is Pending.
    assert_eq!(stats.orders, 250);
    assert_eq!(stats.pages, 3);
    assert!(stats.throttled >= 1, "{stats:?}");
    let cursor: amazon::Cursor = conveyor_connectors::cursor::load(&p.cursor_file)
        .unwrap()
        .unwrap();
    assert!(cursor.last_updated_after.starts_with("20"), "{cursor:?}");

    // A revoked token is refreshed once and the pass goes on from the cursor.
    shop.revoke_tokens();
    let again = AmazonPoller::new(ac.clone(), publisher.clone(), state.path())
        .pass(&token)
        .await
        .unwrap();
    assert_eq!(again.orders, 1, "only the boundary order again");
    assert!(shop.counts().1 >= 2, "a second token was issued");

    let raw = read_all(&config, &raw_topic).await;
    assert_eq!(raw.len(), 251);
    let normalized = all_normalize(&raw, &codec);
    let cancelled = (0..250).filter(|i| i % 13 == 12).count();
    assert_eq!(
        normalized
            .iter()
            .filter(|n| n.cancellation.is_some())
            .count(),
        cancelled
    );

    // Bad credentials: a clear error naming what to check, nothing published.
    let mut bad = ac;
    bad.refresh_token = conveyor_runtime::config::Secret::new("wrong");
    let dir2 = tempfile::tempdir().unwrap();
    let e = AmazonPoller::new(bad, publisher, dir2.path())
        .pass(&token)
        .await
        .unwrap_err();
    assert!(e.to_string().contains("refresh token"), "{e}");
    token.cancel();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_ebay_poller_pages_a_closed_window_and_refreshes_its_token() {
    use conveyor_connectors::ebay::{self, Poller as EbayPoller};
    use conveyor_connectors::simulate::ebay as esim;
    let ns = common::unique("it.ebay");
    let mut config = common::config();
    config.topics.namespace = ns.clone();
    common::require_broker(&config).await;
    let raw_topic = Topology::resolve(&config)
        .raw_topic("ebay")
        .unwrap()
        .to_string();
    common::stream::create(&config, &[&raw_topic]).await;

    // 450 orders: three pages of 200; every 2nd call is a 429.
    let shop = Arc::new(
        esim::Sim::new(450, "conveyor-app", "app-secret", "v^1.1#refresh").throttle_every(2),
    );
    let token = CancellationToken::new();
    let (addr, _task) = esim::serve(shop.clone(), "127.0.0.1:0".parse().unwrap(), token.clone())
        .await
        .unwrap();
    let mut ec = config.channels.ebay.clone();
    ec.api_url = format!("http://{addr}");
    ec.token_url = format!("http://{addr}/identity/v1/oauth2/token");
    ec.client_id = "conveyor-app".into();
    ec.client_secret = conveyor_runtime::config::Secret::new("app-secret");
    ec.refresh_token = conveyor_runtime::config::Secret::new("v^1.1#refresh");
    ec.backfill_hours = 24 * 365 * 50;
    let codec = Arc::new(Codec::new(&config.schema_registry.url).unwrap());
    let publisher = RawPublisher::new(&config, codec.clone(), "ebay", "test-ebay").unwrap();
    let state = tempfile::tempdir().unwrap();
    let p = EbayPoller::new(ec.clone(), publisher.clone(), state.path());
    let stats = p.pass(&token).await.unwrap();
    assert_eq!((stats.orders, stats.pages), (450, 3), "{stats:?}");
    assert!(stats.throttled >= 2 && !stats.window_changed, "{stats:?}");
    let cursor: ebay::Cursor = conveyor_connectors::cursor::load(&p.cursor_file)
        .unwrap()
        .unwrap();

    // The next pass starts where the window ended: nothing new; a revoked
    // token is refreshed on the way.
    shop.revoke_tokens();
    let again = EbayPoller::new(ec.clone(), publisher.clone(), state.path())
        .pass(&token)
        .await
        .unwrap();
    assert_eq!(again.orders, 0);
    assert!(shop.counts().1 >= 2);
    let later: ebay::Cursor = conveyor_connectors::cursor::load(&p.cursor_file)
        .unwrap()
        .unwrap();
    assert!(later.last_modified_from >= cursor.last_modified_from);

    let raw = read_all(&config, &raw_topic).await;
    assert_eq!(raw.len(), 450);
    assert_eq!(all_normalize(&raw, &codec).len(), 450);

    let mut bad = ec;
    bad.client_secret = conveyor_runtime::config::Secret::new("wrong");
    let dir2 = tempfile::tempdir().unwrap();
    let e = EbayPoller::new(bad, publisher, dir2.path())
        .pass(&token)
        .await
        .unwrap_err();
    assert!(e.to_string().contains("client id"), "{e}");
    token.cancel();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tiktok_webhooks_fetch_signed_orders_and_publish_each_once() {
    use conveyor_connectors::simulate::tiktok as tsim;
    use conveyor_connectors::tiktok;
    use conveyor_runtime::config::Secret;
    let ns = common::unique("it.tiktok");
    let mut config = common::config();
    config.topics.namespace = ns.clone();
    common::require_broker(&config).await;
    let raw_topic = Topology::resolve(&config)
        .raw_topic("tiktok")
        .unwrap()
        .to_string();
    common::stream::create(&config, &[&raw_topic]).await;

    // The shop still signs with the old secret (a rotation under way): the
    // receiver verifies with either and the client finds the one that works.
    // The API allows 40 calls/s with a burst of 5, fewer than the client
    // would make: 429s are retried.
    let (key, new, old, access) = ("6abc", "new-secret", "old-secret", "TTP_token");
    let shop = Arc::new(tsim::Sim::new(500, key, old, access).with_rate(40.0, 5.0));
    let stop = CancellationToken::new();
    let (api, _task) = tsim::serve(shop.clone(), "127.0.0.1:0".parse().unwrap(), stop.clone())
        .await
        .unwrap();
    config.channels.tiktok.api_url = format!("http://{api}");
    config.channels.tiktok.app_key = key.into();
    config.channels.tiktok.app_secrets = vec![Secret::new(new), Secret::new(old)];
    config.channels.tiktok.access_token = Secret::new(access);
    config.channels.tiktok.api_rate_per_sec = 200.0;
    let codec = Arc::new(Codec::new(&config.schema_registry.url).unwrap());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/webhooks/tiktok", listener.local_addr().unwrap());
    let receiver = {
        let (config, codec, stop) = (config.clone(), codec.clone(), stop.clone());
        tokio::spawn(async move { tiktok::serve(&config, codec, listener, stop).await })
    };

    let http = reqwest::Client::new();
    let deliver = |body: Vec<u8>, headers: Vec<(&'static str, String)>| {
        let mut req = http.post(&url).body(body);
        for (k, v) in headers {
            req = req.header(k, v);
        }
        req.send()
    };

    // A notification signed with a secret the shop never had: 401.
    let (body, _) = tsim::webhook_request(450, key, old);
    let forged = tiktok::sign::webhook_sign(key, "attacker", &body);
    let r = deliver(body, vec![("authorization", forged)])
        .await
        .unwrap();
    assert_eq!(r.status(), 401);

    let stats = tsim::fire_webhooks(&url, key, old, 0..400, 32, 20).await;
    assert_eq!((stats.acked, stats.failed), (400, 0), "{stats:?}");
    assert!(
        shop.counts().1 >= 1,
        "the API throttled: {:?}",
        shop.counts()
    );

    // The same notification again: acknowledged, not fetched nor published.
    let before = shop.counts().0;
    let (body, headers) = tsim::webhook_request(7, key, old);
    let r = deliver(body, headers).await.unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(shop.counts().0, before);

    // An order the API does not know, and an expired token: 503 with
    // Retry-After (TikTok retries), nothing published.
    let (body, headers) = tsim::webhook_request(10_000, key, old);
    let r = deliver(body, headers).await.unwrap();
    assert_eq!(r.status(), 503, "{:?}", r.text().await);
    shop.expire_token();
    let (body, headers) = tsim::webhook_request(420, key, old);
    let r = deliver(body, headers).await.unwrap();
    assert_eq!(r.status(), 503);
    assert!(r.headers().contains_key("retry-after"));

    let raw = read_all(&config, &raw_topic).await;
    let ids: BTreeSet<String> = raw
        .iter()
        .map(|r| String::from_utf8_lossy(r.key.as_deref().unwrap_or_default()).into_owned())
        .collect();
    // At least once: a delivery answered 503 because its fetch and publish
    // outlasted ack_timeout_ms may have landed anyway and is then published
    // again by TikTok's retry (normalize drops the copy). Only a retried
    // delivery can add a record.
    assert!(
        raw.len() >= 400 && raw.len() as u64 - 400 <= stats.retries,
        "{} records for 400 orders and {} retried deliveries",
        raw.len(),
        stats.retries
    );
    let expected: BTreeSet<String> = (0..400)
        .map(|n| {
            conveyor_processors::normalize::tiktok::example(n)["id"]
                .as_str()
                .unwrap()
                .to_string()
        })
        .collect();
    assert_eq!(ids, expected);
    // Every record normalizes, and a retried delivery's copy is the same
    // order (normalize's dedup drops it by id and version).
    let normalized = all_normalize(&raw, &codec);
    assert_eq!(normalized.len(), raw.len());
    let distinct: BTreeSet<(&str, i64)> = normalized
        .iter()
        .map(|n| (n.order.order_id.as_str(), n.version))
        .collect();
    assert_eq!(distinct.len(), 400);
    for r in &raw {
        let env: conveyor_schemas::records::RawOrder = codec
            .decode(
                r.payload.as_deref(),
                Source {
                    topic: &r.topic,
                    partition: r.partition,
                    offset: r.offset,
                },
            )
            .await
            .unwrap();
        assert!(
            env.event_id.starts_with("tiktok:webhook:"),
            "{}",
            env.event_id
        );
        assert!(!env.source_headers.contains_key("authorization"));
        let text = String::from_utf8_lossy(&env.payload);
        assert!(!text.contains(access) && !text.contains(old));
    }
    stop.cancel();
    receiver.await.unwrap().unwrap();
}
