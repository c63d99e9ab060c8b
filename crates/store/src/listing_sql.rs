// The `LogReader` implementation shared by both backends; `include!`d after
// `sql_common.rs` by `sqlite.rs` and `postgres.rs` (which define `Db` and `Store`).
// Names come with their paths: `sql_common.rs` already imports into this module.

/// `(created_at, id) < cursor`, then newest first, one row more than asked to learn
/// whether another page follows.
fn push_page_tail(
    qb: &mut sqlx::QueryBuilder<'_, Db>,
    after: Option<crate::listing::Cursor>,
    limit: u32,
) {
    if let Some(c) = after {
        qb.push(" AND (created_at, id) < (")
            .push_bind(c.created_at_ms)
            .push(", ")
            .push_bind(c.id)
            .push(")");
    }
    qb.push(" ORDER BY created_at DESC, id DESC LIMIT ")
        .push_bind(i64::from(limit.clamp(1, crate::listing::MAX_PAGE)) + 1);
}

fn push_time_range(
    qb: &mut sqlx::QueryBuilder<'_, Db>,
    from: Option<DateTime<Utc>>,
    to: Option<DateTime<Utc>>,
) {
    if let Some(v) = from {
        qb.push(" AND created_at >= ").push_bind(to_ms(v));
    }
    if let Some(v) = to {
        qb.push(" AND created_at < ").push_bind(to_ms(v));
    }
}

/// Cuts the extra row off and turns the last row's position into the next cursor.
fn into_page<T>(
    rows: &[DbRow],
    limit: u32,
    parse: fn(&DbRow) -> Result<T, StoreError>,
) -> Result<crate::listing::Page<T>, StoreError> {
    let limit = limit.clamp(1, crate::listing::MAX_PAGE) as usize;
    let more = rows.len() > limit;
    let shown = &rows[..rows.len().min(limit)];
    let next = match (more, shown.last()) {
        (true, Some(last)) => Some(crate::listing::Cursor {
            created_at_ms: last.try_get("created_at")?,
            id: last.try_get("id")?,
        }),
        _ => None,
    };
    Ok(crate::listing::Page {
        rows: shown.iter().map(parse).collect::<Result<_, _>>()?,
        next,
    })
}

#[async_trait]
impl crate::listing::LogReader for Store {
    async fn spend_page(
        &self,
        q: &crate::listing::SpendQuery,
    ) -> Result<crate::listing::Page<SpendRow>, StoreError> {
        let mut qb = QueryBuilder::<Db>::new(
            "SELECT id, request_id, key_hash, model, deployment, prompt_tokens, \
             completion_tokens, cost, latency_ms, status, mcp_calls, created_at \
             FROM gatehouse_spend_logs WHERE 1 = 1",
        );
        if let Some(v) = &q.key_hash {
            qb.push(" AND key_hash = ").push_bind(v.clone());
        }
        if let Some(v) = &q.model {
            qb.push(" AND model = ").push_bind(v.clone());
        }
        match &q.status {
            Some(crate::listing::StatusFilter::Is(s)) => {
                qb.push(" AND status = ").push_bind(s.clone());
            }
            // Written exactly as the partial index's predicate, so SQLite uses it.
            Some(crate::listing::StatusFilter::Errors) => {
                qb.push(" AND status <> 'success'");
            }
            None => {}
        }
        push_time_range(&mut qb, q.from, q.to);
        push_page_tail(&mut qb, q.after, q.limit);
        let rows = qb.build().fetch_all(&self.pool).await?;
        into_page(&rows, q.limit, spend_from_row)
    }

    async fn audit_page(
        &self,
        q: &crate::listing::AuditQuery,
    ) -> Result<crate::listing::Page<AuditRow>, StoreError> {
        let mut qb = QueryBuilder::<Db>::new(
            "SELECT id, key_hash, request_id, server, tool, duration_ms, outcome, args_size, \
             result_size, created_at FROM gatehouse_audit_logs WHERE 1 = 1",
        );
        if let Some(v) = &q.key_hash {
            qb.push(" AND key_hash = ").push_bind(v.clone());
        }
        if let Some(v) = &q.server {
            qb.push(" AND server = ").push_bind(v.clone());
        }
        if let Some(v) = &q.tool {
            qb.push(" AND tool = ").push_bind(v.clone());
        }
        if let Some(v) = &q.outcome {
            qb.push(" AND outcome = ").push_bind(v.clone());
        }
        push_time_range(&mut qb, q.from, q.to);
        push_page_tail(&mut qb, q.after, q.limit);
        let rows = qb.build().fetch_all(&self.pool).await?;
        into_page(&rows, q.limit, audit_from_row)
    }

    async fn spend_buckets(
        &self,
        from: DateTime<Utc>,
        bucket_secs: u32,
    ) -> Result<Vec<crate::listing::SpendBucket>, StoreError> {
        let bucket_ms = i64::from(bucket_secs.max(1)) * 1000;
        let mut qb = QueryBuilder::<Db>::new("SELECT (created_at / ");
        qb.push_bind(bucket_ms)
            .push(") * ")
            .push_bind(bucket_ms)
            .push(
                " AS bucket, COUNT(*) AS requests, \
                 SUM(CASE WHEN status <> 'success' THEN 1 ELSE 0 END) AS errors, \
                 SUM(cost) AS cost, CAST(AVG(latency_ms) AS DOUBLE PRECISION) AS latency_avg, \
                 MAX(latency_ms) AS latency_max FROM gatehouse_spend_logs WHERE created_at >= ",
            )
            .push_bind(to_ms(from))
            .push(" GROUP BY bucket ORDER BY bucket");
        let rows = qb.build().fetch_all(&self.pool).await?;
        rows.iter()
            .map(|r| {
                Ok(crate::listing::SpendBucket {
                    start: from_ms(r.try_get("bucket")?),
                    requests: to_u64(r.try_get("requests")?),
                    errors: to_u64(r.try_get("errors")?),
                    cost: r.try_get("cost")?,
                    latency_ms_avg: r.try_get("latency_avg")?,
                    latency_ms_max: to_u64(r.try_get("latency_max")?),
                })
            })
            .collect()
    }
}
