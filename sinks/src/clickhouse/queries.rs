//! The analyst queries of docs/analytics.md, as the doc states them
//! (each a ```sql block opening with `-- qN: title`): the tests run every
//! one against the real engine, the demo prints some.

/// One documented query.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AnalystQuery {
    /// `q1` ... `q10`.
    pub name: String,
    pub title: String,
    pub sql: String,
}

/// Every query of docs/analytics.md, in the doc's order.
pub fn analyst_queries() -> Vec<AnalystQuery> {
    parse(include_str!("../../../docs/analytics.md"))
}

fn parse(doc: &str) -> Vec<AnalystQuery> {
    doc.split("```sql\n")
        .skip(1)
        .filter_map(|block| {
            let sql = block.split("\n```").next()?;
            let (name, title) = sql.lines().next()?.strip_prefix("-- ")?.split_once(": ")?;
            Some(AnalystQuery {
                name: name.to_string(),
                title: title.to_string(),
                sql: sql.to_string(),
            })
        })
        .collect()
}

/// `sql` with `today()` and `now()` read as `day` (`YYYY-MM-DD`, its last
/// second), so the queries' windows cover data of a fixed day.
pub fn pin_today(sql: &str, day: &str) -> String {
    sql.replace("today()", &format!("toDate('{day}')")).replace(
        "now()",
        &format!("toDateTime64('{day} 23:59:59', 3, 'UTC')"),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_doc_has_ten_named_queries() {
        let q = analyst_queries();
        let names: Vec<&str> = q.iter().map(|q| q.name.as_str()).collect();
        assert_eq!(
            names,
            ["q1", "q2", "q3", "q4", "q5", "q6", "q7", "q8", "q9", "q10"]
        );
        assert!(q
            .iter()
            .all(|q| !q.title.is_empty() && q.sql.contains("SELECT")));
        assert_eq!(
            pin_today("WHERE d >= today() - 1 AND t < now()", "2026-11-27"),
            "WHERE d >= toDate('2026-11-27') - 1 AND t < toDateTime64('2026-11-27 23:59:59', 3, 'UTC')"
        );
    }
}
