//! PostgreSQL's fast path: a source query's result as binary `COPY ... TO STDOUT`.
//!
//! The query is wrapped so that each needed column arrives in one of five wire types
//! (int8, float8, bool, text, timestamp), chosen from the column's prepared type, and the
//! binary stream is decoded straight into the same [`ColumnBuilder`]s as the row path. This
//! skips the per-row protocol overhead of a normal query: the server streams tuples as fast
//! as it produces them.

use super::decode::{Cell, ColumnBuilder};
use super::load::{Chunks, Reading};
use super::{ColumnSpec, ColumnType, SourceKind};
use anyhow::{Context, Result, anyhow, bail};
use futures_util::TryStreamExt;
use sqlx::postgres::{PgPool, PgPoolCopyExt};
use sqlx::{AssertSqlSafe, Column as _, Executor, SqlSafeStr, Statement, TypeInfo};
use std::borrow::Cow;

/// Microseconds from the Unix epoch to PostgreSQL's epoch, 2000-01-01 UTC.
const PG_EPOCH_MICROS: i64 = 946_684_800_000_000;

/// The binary COPY signature that starts the stream.
const SIGNATURE: &[u8] = b"PGCOPY\n\xff\r\n\0";

/// How a column travels in the binary stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Wire {
    Int8,
    Float8,
    Bool,
    Text,
    Stamp,
    /// A calendar date (days since 2000-01-01): local midnight, read in the evaluation zone.
    Date,
}

/// The wire type and SQL cast for a source column of `ty` whose database type is `pg`.
fn wire_for(ty: ColumnType, pg: &str) -> (Wire, &'static str) {
    let integer = matches!(pg, "INT2" | "INT4" | "INT8");
    let numeric = matches!(pg, "NUMERIC" | "FLOAT4" | "FLOAT8");
    match ty {
        ColumnType::Id if integer => (Wire::Int8, "::int8"),
        ColumnType::Timestamp if matches!(pg, "TIMESTAMPTZ" | "TIMESTAMP") => (Wire::Stamp, ""),
        ColumnType::Timestamp if pg == "DATE" => (Wire::Date, ""),
        ColumnType::Timestamp | ColumnType::Bool if integer => (Wire::Int8, "::int8"),
        ColumnType::Id | ColumnType::Timestamp | ColumnType::Number if numeric || integer => (Wire::Float8, "::float8"),
        ColumnType::Bool | ColumnType::Number if pg == "BOOL" => (Wire::Bool, ""),
        _ => (Wire::Text, "::text"),
    }
}

fn quote_ident(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

/// Loads a source through binary COPY into its columns.
pub async fn load(
    pool: &PgPool,
    kind: SourceKind,
    specs: &[ColumnSpec],
    sql: &str,
    reading: Reading,
    chunks: Option<&mut Chunks>,
) -> Result<(usize, Vec<ColumnBuilder>)> {
    let statement = pool
        .prepare(AssertSqlSafe(sql.to_string()).into_sql_str())
        .await
        .with_context(|| format!("source '{kind}': the query failed to prepare"))?;
    let names: Vec<String> = statement.columns().iter().map(|c| c.name().to_string()).collect();
    let mapped = super::load::map_columns(kind, specs, &names, reading)?;
    let mut select = Vec::new();
    let mut wires = Vec::new();
    let mut builders = Vec::new();
    for (index, builder) in mapped {
        let pg_type = statement.columns()[index].type_info().name().to_string();
        let (wire, cast) = wire_for(builder.spec.ty, &pg_type);
        select.push(format!("s.{}{cast}", quote_ident(&names[index])));
        wires.push(wire);
        builders.push(builder);
    }
    let copy = format!("COPY (SELECT {} FROM ({sql}) AS s) TO STDOUT (FORMAT binary)", select.join(", "));
    copy_out(pool, &format!("source '{kind}'"), &copy, &wires, builders, chunks).await
}

/// Runs a binary `COPY ... TO STDOUT` whose columns arrive as `wires`, into `builders`
/// (handed on to `chunks` as they fill, if given). `label` names what is read in errors
/// (e.g. `source 'posts'`).
pub(crate) async fn copy_out(
    pool: &PgPool,
    label: &str,
    copy: &str,
    wires: &[Wire],
    mut builders: Vec<ColumnBuilder>,
    mut chunks: Option<&mut Chunks>,
) -> Result<(usize, Vec<ColumnBuilder>)> {
    let mut stream = pool.copy_out_raw(copy).await.with_context(|| format!("{label}: the query failed"))?;
    let mut decoder = Decoder { buffer: Vec::new(), header_done: false, rows: 0, finished: false };
    let mut failure = None;
    while let Some(chunk) = stream.try_next().await.with_context(|| format!("{label}: the query failed"))? {
        // After a bad value the rest of the stream is read and dropped: a COPY left unfinished
        // would leave its connection, back in the pool, out of step with the server.
        if failure.is_some() {
            continue;
        }
        decoder.buffer.extend_from_slice(&chunk);
        let drained = decoder.drain(label, wires, &mut builders);
        let handed = match (drained, chunks.as_deref_mut()) {
            (Ok(()), Some(chunks)) => chunks.offer(decoder.rows, &mut builders).await,
            (drained, _) => drained,
        };
        if let Err(error) = handed {
            failure = Some(error);
            decoder.buffer = Vec::new();
        }
    }
    if let Some(error) = failure {
        return Err(error);
    }
    if !decoder.finished {
        bail!("{label}: the COPY stream ended early");
    }
    Ok((decoder.rows, builders))
}

struct Decoder {
    buffer: Vec<u8>,
    header_done: bool,
    rows: usize,
    finished: bool,
}

impl Decoder {
    /// Decodes every complete tuple in the buffer and keeps the incomplete rest.
    fn drain(&mut self, label: &str, wires: &[Wire], builders: &mut [ColumnBuilder]) -> Result<()> {
        let mut pos = 0;
        if !self.header_done {
            let Some(len) = header_len(&self.buffer)? else { return Ok(()) };
            pos = len;
            self.header_done = true;
        }
        while let Some(fields) = read_i16(&self.buffer, pos) {
            if fields == -1 {
                self.finished = true;
                pos += 2;
                break;
            }
            if fields as usize != wires.len() {
                bail!("{label}: COPY returned {fields} fields, expected {}", wires.len());
            }
            let Some(end) = tuple_end(&self.buffer, pos + 2, wires.len()) else { break };
            let mut at = pos + 2;
            self.rows += 1;
            for (wire, builder) in wires.iter().zip(builders.iter_mut()) {
                let len = read_i32(&self.buffer, at).ok_or_else(|| anyhow!("truncated COPY field"))?;
                at += 4;
                let cell = if len < 0 {
                    Cell::Null
                } else {
                    let bytes = &self.buffer[at..at + len as usize];
                    at += len as usize;
                    decode(*wire, bytes).map_err(|e| {
                        anyhow!("{label}, column '{}', row {}: {e}", builder.spec.shown_name(), self.rows)
                    })?
                };
                builder
                    .push(cell)
                    .map_err(|e| anyhow!("{label}, column '{}', row {}: {e}", builder.spec.shown_name(), self.rows))?;
            }
            pos = end;
        }
        self.buffer.drain(..pos);
        Ok(())
    }
}

/// The header's length once it is complete, after checking its signature.
fn header_len(buffer: &[u8]) -> Result<Option<usize>> {
    if buffer.len() < SIGNATURE.len() + 8 {
        return Ok(None);
    }
    if &buffer[..SIGNATURE.len()] != SIGNATURE {
        bail!("not a binary COPY stream");
    }
    let extension = read_i32(buffer, SIGNATURE.len() + 4).unwrap_or(0).max(0) as usize;
    let len = SIGNATURE.len() + 8 + extension;
    Ok((buffer.len() >= len).then_some(len))
}

/// Where the tuple whose fields start at `pos` ends, if it is complete in the buffer.
fn tuple_end(buffer: &[u8], mut pos: usize, fields: usize) -> Option<usize> {
    for _ in 0..fields {
        let len = read_i32(buffer, pos)?;
        pos += 4;
        if len > 0 {
            pos += len as usize;
        }
        if pos > buffer.len() {
            return None;
        }
    }
    Some(pos)
}

fn read_i16(buffer: &[u8], pos: usize) -> Option<i16> {
    buffer.get(pos..pos + 2).map(|b| i16::from_be_bytes([b[0], b[1]]))
}

fn read_i32(buffer: &[u8], pos: usize) -> Option<i32> {
    buffer.get(pos..pos + 4).map(|b| i32::from_be_bytes([b[0], b[1], b[2], b[3]]))
}

fn decode(wire: Wire, bytes: &[u8]) -> Result<Cell<'_>, String> {
    let fixed = |n: usize| -> Result<[u8; 8], String> {
        let mut out = [0u8; 8];
        if bytes.len() != n {
            return Err(format!("unexpected {}-byte value", bytes.len()));
        }
        out[8 - n..].copy_from_slice(bytes);
        Ok(out)
    };
    Ok(match wire {
        Wire::Int8 => Cell::Int(i64::from_be_bytes(fixed(8)?)),
        Wire::Float8 => Cell::Float(f64::from_be_bytes(fixed(8)?)),
        Wire::Bool => Cell::Bool(bytes.first().is_some_and(|b| *b != 0)),
        Wire::Text => Cell::Text(Cow::Borrowed(std::str::from_utf8(bytes).map_err(|e| e.to_string())?)),
        Wire::Stamp => {
            let micros = i64::from_be_bytes(fixed(8)?);
            if micros == i64::MAX || micros == i64::MIN {
                return Err("an infinite timestamp cannot be read".to_string());
            }
            Cell::Micros(micros + PG_EPOCH_MICROS)
        }
        Wire::Date => {
            let days = i32::from_be_bytes(fixed(4)?[4..].try_into().map_err(|_| "a truncated date".to_string())?);
            if days == i32::MAX || days == i32::MIN {
                return Err("an infinite date cannot be read".to_string());
            }
            let epoch = chrono::NaiveDate::from_ymd_opt(2000, 1, 1).ok_or("no PostgreSQL epoch")?;
            Cell::Date(epoch + chrono::Duration::days(i64::from(days)))
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps_are_shifted_from_the_postgres_epoch() {
        let bytes = 0i64.to_be_bytes();
        assert_eq!(decode(Wire::Stamp, &bytes), Ok(Cell::Micros(PG_EPOCH_MICROS)));
    }

    #[test]
    fn a_tuple_split_across_chunks_waits_for_its_end() {
        // one field of 4 bytes, but only 2 bytes have arrived
        let buffer = [0, 0, 0, 4, 1, 2];
        assert_eq!(tuple_end(&buffer, 0, 1), None);
        let buffer = [0, 0, 0, 4, 1, 2, 3, 4];
        assert_eq!(tuple_end(&buffer, 0, 1), Some(8));
    }

    #[test]
    fn columns_get_the_cheapest_wire_type_that_keeps_their_meaning() {
        assert_eq!(wire_for(ColumnType::Id, "INT4"), (Wire::Int8, "::int8"));
        assert_eq!(wire_for(ColumnType::Timestamp, "DATE"), (Wire::Date, ""));
        assert_eq!(wire_for(ColumnType::Timestamp, "TEXT"), (Wire::Text, "::text"));
        assert_eq!(wire_for(ColumnType::Bool, "INT2"), (Wire::Int8, "::int8"));
        assert_eq!(wire_for(ColumnType::Number, "NUMERIC"), (Wire::Float8, "::float8"));
        assert_eq!(wire_for(ColumnType::Text, "INT8"), (Wire::Text, "::text"));
    }
}
