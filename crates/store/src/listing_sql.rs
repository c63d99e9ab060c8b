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
             completion_tokens, cost, latency_ms, status, mcp_calls, cache_hit, created_at \
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
        // Whole minutes: the rollup's resolution.
        let bucket_ms = i64::from(bucket_secs.max(60) / 60) * MINUTE_MS;
        let start_ms = to_ms(from).div_euclid(MINUTE_MS) * MINUTE_MS;
        let mut qb = QueryBuilder::<Db>::new("SELECT (minute / ");
        qb.push_bind(bucket_ms)
            .push(") * ")
            .push_bind(bucket_ms)
            .push(
                " AS bucket, CAST(SUM(requests) AS BIGINT) AS requests, \
                 CAST(SUM(errors) AS BIGINT) AS errors, SUM(cost) AS cost, \
                 CAST(SUM(latency_ms_sum) AS BIGINT) AS latency_sum \
                 FROM gatehouse_spend_minutes WHERE minute >= ",
            )
            .push_bind(start_ms)
            .push(" GROUP BY bucket ORDER BY bucket");
        let rows = qb.build().fetch_all(&self.pool).await?;
        rows.iter()
            .map(|r| {
                let requests = to_u64(r.try_get("requests")?);
                let latency_sum = to_u64(r.try_get("latency_sum")?);
                Ok(crate::listing::SpendBucket {
                    start: from_ms(r.try_get("bucket")?),
                    requests,
                    errors: to_u64(r.try_get("errors")?),
                    cost: r.try_get("cost")?,
                    latency_ms_avg: if requests == 0 {
                        0.0
                    } else {
                        latency_sum as f64 / requests as f64
                    },
                })
            })
            .collect()
    }
}

const MINUTE_MS: i64 = 60_000;

/// Adds a batch's rows to the per-minute rollup (`gatehouse_spend_minutes`) inside the
/// batch's transaction, so totals and rows never disagree. One upsert per minute, in
/// minute order (two replicas' batches lock rows in the same order: no deadlock), with
/// increments, so replicas sharing a database add up.
async fn add_minute_totals(
    tx: &mut sqlx::Transaction<'static, Db>,
    rows: &[SpendRow],
) -> Result<(), StoreError> {
    let mut minutes: std::collections::BTreeMap<i64, (i64, i64, f64, i64)> = Default::default();
    for r in rows {
        let m = to_ms(r.created_at).div_euclid(MINUTE_MS) * MINUTE_MS;
        let e = minutes.entry(m).or_default();
        e.0 += 1;
        e.1 += i64::from(r.status != "success");
        e.2 += r.cost;
        e.3 = e.3.saturating_add(to_i64("latency_ms", r.latency_ms)?);
    }
    let totals: Vec<_> = minutes.into_iter().collect();
    for chunk in totals.chunks(LOG_CHUNK) {
        let mut qb = QueryBuilder::<Db>::new(
            "INSERT INTO gatehouse_spend_minutes (minute, requests, errors, cost, latency_ms_sum) ",
        );
        qb.push_values(chunk, |mut b, (m, (n, e, c, l))| {
            b.push_bind(*m).push_bind(*n).push_bind(*e).push_bind(*c).push_bind(*l);
        });
        qb.push(
            " ON CONFLICT (minute) DO UPDATE SET \
             requests = gatehouse_spend_minutes.requests + excluded.requests, \
             errors = gatehouse_spend_minutes.errors + excluded.errors, \
             cost = gatehouse_spend_minutes.cost + excluded.cost, \
             latency_ms_sum = gatehouse_spend_minutes.latency_ms_sum + excluded.latency_ms_sum",
        );
        qb.build().execute(&mut **tx).await?;
    }
    Ok(())
}
