//! Server-rendered HTML: escaping, the page frame, small helpers. No
//! template engine and no front-end build: every value goes through
//! [`esc`] (text and attribute contexts alike), and the only script is
//! `console.js` (live regions and confirmations), served from the binary.

use std::fmt::Write as _;

use conveyor_runtime::console::Role;

/// `s` escaped for HTML text and double-quoted attributes.
pub fn esc(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 8);
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// `s` escaped for a URL query value.
pub fn url(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(b as char);
        } else {
            let _ = write!(out, "%{b:02X}");
        }
    }
    out
}

/// UTC millis as `2026-11-30 14:05:09`.
pub fn time(ms: i64) -> String {
    jiff::Timestamp::from_millisecond(ms)
        .map(|t| t.strftime("%Y-%m-%d %H:%M:%S").to_string())
        .unwrap_or_else(|_| ms.to_string())
}

pub fn opt_time(ms: Option<i64>) -> String {
    ms.map(time).unwrap_or_default()
}

/// What a viewer sees in place of personal data.
pub const HIDDEN: &str = "<span class=\"hidden\" title=\"visible to operators\">hidden</span>";

/// `value` escaped, or [`HIDDEN`] when `role` may not see PII.
pub fn pii(role: Role, value: &str) -> String {
    if role.sees_pii() {
        esc(value)
    } else {
        HIDDEN.to_string()
    }
}

/// A status as a coloured badge.
pub fn badge(status: &str) -> String {
    let class = match status {
        "LABELED" | "SHIPPED" | "CONFIRMED" | "RESOLVED" | "ok" => "good",
        "CANCELLED" | "EXCEPTION" | "OPEN" | "OUT_OF_STOCK" | "failing" => "bad",
        "BACKORDERED" | "PARTIALLY_ALLOCATED" | "RETRIED" | "LOW_STOCK" | "stale" => "warn",
        _ => "neutral",
    };
    format!("<span class=\"badge {class}\">{}</span>", esc(status))
}

/// Who is looking, for the frame.
pub struct Viewer<'a> {
    pub user: &'a str,
    pub role: Role,
    pub csrf: &'a str,
}

/// A whole page: navigation, the user and logout, `body`.
pub fn page(title: &str, active: &str, who: Option<&Viewer<'_>>, body: &str) -> String {
    let mut nav = String::new();
    if let Some(v) = who {
        let mut links = vec![
            ("orders", "/orders", "Orders"),
            ("exceptions", "/exceptions", "Exceptions"),
            ("inventory", "/inventory", "Inventory"),
            ("health", "/health", "Health"),
        ];
        if v.role >= Role::Admin {
            links.push(("audit", "/audit", "Audit log"));
        }
        nav.push_str("<nav><span class=\"brand\">conveyor</span>");
        for (id, href, text) in links {
            let class = if id == active {
                " class=\"active\""
            } else {
                ""
            };
            let _ = write!(nav, "<a href=\"{href}\"{class}>{text}</a>");
        }
        let _ = write!(
            nav,
            "<form method=\"post\" action=\"/logout\" class=\"logout\"><span class=\"who\">{} ({})</span>\
             <input type=\"hidden\" name=\"csrf\" value=\"{}\"><button type=\"submit\">Log out</button></form></nav>",
            esc(v.user),
            v.role.as_str(),
            esc(v.csrf)
        );
    }
    format!(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
         <title>{} · conveyor</title><link rel=\"stylesheet\" href=\"/static/console.css\">\
         <script src=\"/static/console.js\" defer></script></head>\
         <body>{nav}<main>{body}</main></body></html>",
        esc(title)
    )
}

/// A table: header cells and rows of already-rendered cells.
pub fn table(id: &str, head: &[&str], rows: &[Vec<String>], empty: &str) -> String {
    let mut out = format!("<table id=\"{}\"><thead><tr>", esc(id));
    for h in head {
        let _ = write!(out, "<th>{}</th>", esc(h));
    }
    out.push_str("</tr></thead><tbody>");
    if rows.is_empty() {
        let _ = write!(
            out,
            "<tr><td colspan=\"{}\" class=\"empty\">{}</td></tr>",
            head.len(),
            esc(empty)
        );
    }
    for r in rows {
        out.push_str("<tr>");
        for c in r {
            let _ = write!(out, "<td>{c}</td>");
        }
        out.push_str("</tr>");
    }
    out.push_str("</tbody></table>");
    out
}

/// A region `console.js` refreshes from `src` every `every_ms`.
pub fn live(id: &str, src: &str, every_ms: u64, inner: &str) -> String {
    format!(
        "<div id=\"{}\" data-live=\"{}\" data-every=\"{every_ms}\">{inner}</div>",
        esc(id),
        esc(src)
    )
}

pub const CSS: &str = r#"
:root{--fg:#1d232b;--muted:#67707c;--line:#dde1e6;--bg:#f6f7f9;--acc:#1f5fbf;--good:#1d7a3e;--bad:#b42318;--warn:#9a6700}
*{box-sizing:border-box}body{margin:0;font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;color:var(--fg);background:var(--bg)}
nav{display:flex;gap:4px;align-items:center;background:#16202c;padding:0 16px;height:46px}
nav a{color:#c9d3df;text-decoration:none;padding:12px 10px}nav a.active,nav a:hover{color:#fff;box-shadow:inset 0 -3px #5b9cff}
nav .brand{color:#fff;font-weight:700;margin-right:14px;letter-spacing:.5px}
nav .logout{margin-left:auto;display:flex;gap:10px;align-items:center}nav .who{color:#c9d3df}
main{padding:18px 22px;max-width:1280px}h1{font-size:20px;margin:4px 0 14px}h2{font-size:16px;margin:22px 0 8px}
table{border-collapse:collapse;width:100%;background:#fff;border:1px solid var(--line);margin-bottom:8px}
th,td{text-align:left;padding:6px 9px;border-bottom:1px solid var(--line);vertical-align:top}th{background:#eef1f4;font-weight:600;font-size:13px}
td.num,th.num{text-align:right;font-variant-numeric:tabular-nums}td.empty{color:var(--muted);text-align:center}
.badge{display:inline-block;padding:1px 7px;border-radius:10px;font-size:12px;font-weight:600;background:#e8ebef}
.badge.good{background:#dcf3e4;color:var(--good)}.badge.bad{background:#fde4e1;color:var(--bad)}.badge.warn{background:#fff1cc;color:var(--warn)}
.hidden{color:var(--muted);font-style:italic}.muted{color:var(--muted)}.error{color:var(--bad);font-weight:600}.notice{background:#e7f0ff;border:1px solid #b9d0f5;padding:8px 12px;margin:8px 0}
.grid{display:grid;grid-template-columns:repeat(auto-fit,minmax(260px,1fr));gap:12px}.card{background:#fff;border:1px solid var(--line);padding:10px 14px}
.card dt{color:var(--muted);font-size:12px}.card dd{margin:0 0 6px}
form.inline{display:inline}input,select,textarea,button{font:inherit}input,select,textarea{padding:5px 7px;border:1px solid #b8c0ca;border-radius:4px}
button{padding:5px 12px;border:1px solid var(--acc);background:var(--acc);color:#fff;border-radius:4px;cursor:pointer}button.plain{background:#fff;color:var(--acc)}
.search{display:flex;gap:8px;margin-bottom:14px}.search input[type=text]{flex:1;max-width:420px}
progress{width:180px;height:12px;vertical-align:middle;accent-color:var(--acc)}
.timeline{list-style:none;padding:0;margin:0;border-left:3px solid var(--line)}.timeline li{padding:4px 12px;position:relative}
.timeline li:before{content:"";position:absolute;left:-7px;top:10px;width:11px;height:11px;border-radius:50%;background:var(--acc)}
.timeline .at{color:var(--muted);font-variant-numeric:tabular-nums;margin-right:8px}
.login{max-width:340px;margin:80px auto;background:#fff;border:1px solid var(--line);padding:22px}.login label{display:block;margin:10px 0 4px}.login input{width:100%}
fieldset{border:1px solid var(--line);background:#fff;padding:10px 14px}fieldset label{display:inline-block;min-width:110px}fieldset p{margin:6px 0}
"#;

pub const JS: &str = r#"
// Live regions: replace the element's content with its source every few seconds.
document.querySelectorAll('[data-live]').forEach(function (el) {
  var every = parseInt(el.dataset.every || '3000', 10);
  function tick() {
    fetch(el.dataset.live, {credentials: 'same-origin', headers: {'X-Requested-With': 'console'}})
      .then(function (r) { if (r.status === 401) { location.href = '/login'; return null; } return r.ok ? r.text() : null; })
      .then(function (html) { if (html !== null) { el.innerHTML = html; el.dataset.updated = Date.now(); } })
      .catch(function () {})
      .finally(function () { setTimeout(tick, every); });
  }
  setTimeout(tick, every);
});
// Forms that ask before they act.
document.addEventListener('submit', function (e) {
  var q = e.target.dataset.confirm;
  if (q && !confirm(q)) { e.preventDefault(); }
});
"#;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_text_and_attributes() {
        assert_eq!(
            esc(r#"<script>alert("x")</script> & 'y'"#),
            "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt; &amp; &#39;y&#39;"
        );
        assert_eq!(
            url("label:shopify:1/PDX 1"),
            "label%3Ashopify%3A1%2FPDX%201"
        );
    }

    #[test]
    fn viewers_see_no_personal_data() {
        assert_eq!(pii(Role::Viewer, "ana@example.com"), HIDDEN);
        assert_eq!(pii(Role::Operator, "a<b"), "a&lt;b");
    }
}
