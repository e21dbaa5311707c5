//! Turning database values into typed Polars columns.
//!
//! Owns the one place where a value from a host database becomes an evaluator value: each
//! driver's row yields [`Cell`]s (what the database actually sent), and a [`ColumnBuilder`]
//! converts them to the column's [`ColumnType`], appending to a plain vector that becomes a
//! Polars column at the end, so rows are never materialised twice.

use super::{ColumnSpec, ColumnType};
use crate::instant::{MICROS_PER_SECOND, local_midnight, parse_source_timestamp};
use chrono_tz::Tz;
use polars::prelude::*;
use sqlx::{Row, TypeInfo, ValueRef};
use std::borrow::Cow;

/// One value as the database sent it.
#[derive(Debug, Clone, PartialEq)]
pub enum Cell<'r> {
    Null,
    Int(i64),
    Float(f64),
    Text(Cow<'r, str>),
    Bool(bool),
    /// A native timestamp, already converted to microseconds since the epoch, UTC.
    Micros(i64),
    /// A native calendar date: it has no zone, and means local midnight in the evaluation
    /// timezone.
    Date(chrono::NaiveDate),
}

impl Cell<'_> {
    /// A short rendering for error messages.
    pub fn show(&self) -> String {
        match self {
            Cell::Null => "NULL".to_string(),
            Cell::Int(v) => v.to_string(),
            Cell::Float(v) => v.to_string(),
            Cell::Text(v) => {
                let short: String = v.chars().take(60).collect();
                format!("'{short}'")
            }
            Cell::Bool(v) => v.to_string(),
            Cell::Micros(v) => v.to_string(),
            Cell::Date(d) => d.to_string(),
        }
    }
}

/// A result row of some driver, read cell by cell.
pub trait CellRow {
    fn cell(&self, index: usize) -> Result<Cell<'_>, String>;
}

impl CellRow for sqlx::sqlite::SqliteRow {
    fn cell(&self, index: usize) -> Result<Cell<'_>, String> {
        let Some(type_name) = sent_type(self, index)? else { return Ok(Cell::Null) };
        let get_err = |e: sqlx::Error| e.to_string();
        Ok(match type_name.as_str() {
            "INTEGER" | "BOOLEAN" => Cell::Int(self.try_get_unchecked::<i64, _>(index).map_err(get_err)?),
            "REAL" | "NUMERIC" => Cell::Float(self.try_get_unchecked::<f64, _>(index).map_err(get_err)?),
            "TEXT" | "DATE" | "TIME" | "DATETIME" => {
                Cell::Text(Cow::Borrowed(self.try_get_unchecked::<&str, _>(index).map_err(get_err)?))
            }
            other => return Err(unsupported("SQLite", other)),
        })
    }
}

impl CellRow for sqlx::postgres::PgRow {
    fn cell(&self, index: usize) -> Result<Cell<'_>, String> {
        let Some(type_name) = sent_type(self, index)? else { return Ok(Cell::Null) };
        let e = |e: sqlx::Error| e.to_string();
        Ok(match type_name.as_str() {
            "INT2" => Cell::Int(i64::from(self.try_get_unchecked::<i16, _>(index).map_err(e)?)),
            "INT4" => Cell::Int(i64::from(self.try_get_unchecked::<i32, _>(index).map_err(e)?)),
            "INT8" => Cell::Int(self.try_get_unchecked::<i64, _>(index).map_err(e)?),
            "FLOAT4" => Cell::Float(f64::from(self.try_get_unchecked::<f32, _>(index).map_err(e)?)),
            "FLOAT8" => Cell::Float(self.try_get_unchecked::<f64, _>(index).map_err(e)?),
            "NUMERIC" => decimal(self.try_get_unchecked::<rust_decimal::Decimal, _>(index).map_err(e)?)?,
            "BOOL" => Cell::Bool(self.try_get_unchecked::<bool, _>(index).map_err(e)?),
            "TEXT" | "VARCHAR" | "BPCHAR" | "NAME" | "CITEXT" | "UNKNOWN" => {
                Cell::Text(Cow::Borrowed(self.try_get_unchecked::<&str, _>(index).map_err(e)?))
            }
            "TIMESTAMPTZ" => {
                let t = self.try_get_unchecked::<chrono::DateTime<chrono::Utc>, _>(index).map_err(e)?;
                Cell::Micros(t.timestamp_micros())
            }
            "TIMESTAMP" => {
                let t = self.try_get_unchecked::<chrono::NaiveDateTime, _>(index).map_err(e)?;
                Cell::Micros(t.and_utc().timestamp_micros())
            }
            "DATE" => Cell::Date(self.try_get_unchecked::<chrono::NaiveDate, _>(index).map_err(e)?),
            other => return Err(unsupported("PostgreSQL", other)),
        })
    }
}

impl CellRow for sqlx::mysql::MySqlRow {
    fn cell(&self, index: usize) -> Result<Cell<'_>, String> {
        let Some(type_name) = sent_type(self, index)? else { return Ok(Cell::Null) };
        let e = |e: sqlx::Error| e.to_string();
        Ok(match type_name.as_str() {
            "BOOLEAN" | "TINYINT" | "SMALLINT" | "INT" | "MEDIUMINT" | "BIGINT" | "YEAR" => {
                Cell::Int(self.try_get_unchecked::<i64, _>(index).map_err(e)?)
            }
            "TINYINT UNSIGNED" | "SMALLINT UNSIGNED" | "INT UNSIGNED" | "MEDIUMINT UNSIGNED" | "BIGINT UNSIGNED" => {
                let v = self.try_get_unchecked::<u64, _>(index).map_err(e)?;
                Cell::Int(i64::try_from(v).map_err(|_| format!("{v} is too large"))?)
            }
            "FLOAT" | "DOUBLE" => Cell::Float(self.try_get_unchecked::<f64, _>(index).map_err(e)?),
            "DECIMAL" => decimal(self.try_get_unchecked::<rust_decimal::Decimal, _>(index).map_err(e)?)?,
            "CHAR" | "VARCHAR" | "TINYTEXT" | "TEXT" | "MEDIUMTEXT" | "LONGTEXT" | "ENUM" | "SET" => {
                Cell::Text(Cow::Owned(self.try_get_unchecked::<String, _>(index).map_err(e)?))
            }
            "DATETIME" | "TIMESTAMP" => {
                // The driver sets the session time zone to UTC, so TIMESTAMP arrives in UTC;
                // DATETIME has no zone and is read as UTC, like zone-less text.
                let t = self.try_get_unchecked::<chrono::NaiveDateTime, _>(index).map_err(e)?;
                Cell::Micros(t.and_utc().timestamp_micros())
            }
            "DATE" => Cell::Date(self.try_get_unchecked::<chrono::NaiveDate, _>(index).map_err(e)?),
            other => return Err(unsupported("MySQL", other)),
        })
    }
}

fn decimal(value: rust_decimal::Decimal) -> Result<Cell<'static>, String> {
    use rust_decimal::prelude::ToPrimitive;
    value.to_f64().map(Cell::Float).ok_or_else(|| format!("cannot read DECIMAL {value} as a number"))
}

fn unsupported(database: &str, type_name: &str) -> String {
    format!("values of {database} type {type_name} are not supported; cast the column in the query")
}

/// The type the database sent for a cell (each value's own, for SQLite), or `None` for NULL.
fn sent_type<R: Row>(row: &R, index: usize) -> Result<Option<String>, String>
where
    usize: sqlx::ColumnIndex<R>,
{
    let raw = row.try_get_raw(index).map_err(|e| e.to_string())?;
    if raw.is_null() {
        return Ok(None);
    }
    Ok(Some(raw.type_info().name().to_string()))
}

/// Accumulates one column of a source, converting each cell to the column's type.
pub struct ColumnBuilder {
    pub spec: ColumnSpec,
    values: Values,
    /// Where calendar dates (native `DATE` values, `YYYY-MM-DD` text) have their midnight.
    timezone: Tz,
    /// Cells pushed so far: the row number of the next one, less one.
    rows: usize,
    /// When set, an unreadable value is recorded here and stored as NULL, so that every bad
    /// value of a source can be reported at once (`check --data`).
    survey: Option<Unreadable>,
}

/// The unreadable values of one column: how many, and the first few with their rows.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Unreadable {
    pub count: usize,
    /// `row N: problem`, for the first [`Unreadable::EXAMPLES`] values.
    pub examples: Vec<String>,
}

impl Unreadable {
    pub const EXAMPLES: usize = 3;
}

/// Each column is appended straight into Polars' own buffers (values plus a validity bitmap),
/// so a source is held once while it loads, not as a vector of options and then a copy.
enum Values {
    Int(PrimitiveChunkedBuilder<Int64Type>),
    Bool(BooleanChunkedBuilder),
    /// Appended straight into Polars' string storage: no per-value allocation.
    Text(StringChunkedBuilder),
    Float(PrimitiveChunkedBuilder<Float64Type>),
}

impl ColumnBuilder {
    pub fn new(spec: ColumnSpec, capacity: usize) -> Self {
        let name = PlSmallStr::from_static(spec.name);
        let values = match spec.ty {
            ColumnType::Id | ColumnType::Timestamp => Values::Int(PrimitiveChunkedBuilder::new(name, capacity)),
            ColumnType::Bool => Values::Bool(BooleanChunkedBuilder::new(name, capacity)),
            ColumnType::Text => Values::Text(StringChunkedBuilder::new(name, capacity)),
            ColumnType::Number => Values::Float(PrimitiveChunkedBuilder::new(name, capacity)),
        };
        ColumnBuilder { spec, values, timezone: Tz::UTC, rows: 0, survey: None }
    }

    /// Reads calendar dates as midnight in `timezone`.
    pub fn in_timezone(mut self, timezone: Tz) -> Self {
        self.timezone = timezone;
        self
    }

    /// Records unreadable values instead of failing on the first one (see [`Self::unreadable`]).
    pub fn surveying(mut self) -> Self {
        self.survey = Some(Unreadable::default());
        self
    }

    /// The unreadable values recorded while surveying.
    pub fn unreadable(&self) -> Option<&Unreadable> {
        self.survey.as_ref().filter(|u| u.count > 0)
    }

    /// Appends one cell; the error says what was wrong with the value (the caller adds where).
    /// While surveying, a bad value is recorded, stored as NULL, and not an error.
    pub fn push(&mut self, cell: Cell<'_>) -> Result<(), String> {
        self.rows += 1;
        match self.push_cell(cell) {
            Err(problem) if self.survey.is_some() => {
                let row = self.rows;
                if let Some(survey) = self.survey.as_mut() {
                    survey.count += 1;
                    if survey.examples.len() < Unreadable::EXAMPLES {
                        survey.examples.push(format!("row {row}: {problem}"));
                    }
                }
                self.append_null();
                Ok(())
            }
            other => other,
        }
    }

    fn append_null(&mut self) {
        match &mut self.values {
            Values::Int(v) => v.append_null(),
            Values::Bool(v) => v.append_null(),
            Values::Text(v) => v.append_null(),
            Values::Float(v) => v.append_null(),
        }
    }

    fn push_cell(&mut self, cell: Cell<'_>) -> Result<(), String> {
        if cell == Cell::Null {
            if !self.spec.nullable {
                return Err("NULL is not allowed here".to_string());
            }
            self.append_null();
            return Ok(());
        }
        let unreadable = || format!("cannot read {} as {}", cell.show(), self.spec.ty.describe());
        match (&mut self.values, self.spec.ty) {
            (Values::Int(v), ColumnType::Id) => v.append_value(to_id(&cell).ok_or_else(unreadable)?),
            (Values::Int(v), _) => v.append_value(to_micros(&cell, &self.timezone).ok_or_else(unreadable)?),
            (Values::Bool(v), _) => v.append_value(to_bool(&cell).ok_or_else(unreadable)?),
            (Values::Text(v), _) => match &cell {
                Cell::Text(text) => v.append_value(text.as_ref()),
                other => v.append_value(to_text(other).ok_or_else(unreadable)?),
            },
            (Values::Float(v), _) => v.append_value(to_number(&cell).ok_or_else(unreadable)?),
        }
        Ok(())
    }

    /// The column of the values pushed since the last take, leaving the builder empty and
    /// counting rows on (a source read in chunks numbers its rows as one).
    pub fn take(&mut self) -> PolarsResult<Column> {
        let empty = ColumnBuilder::new(self.spec, 0).values;
        let values = std::mem::replace(&mut self.values, empty);
        Self::column(values, self.spec.ty)
    }

    /// The finished Polars column, named after the spec.
    pub fn finish(self) -> PolarsResult<Column> {
        Self::column(self.values, self.spec.ty)
    }

    fn column(values: Values, ty: ColumnType) -> PolarsResult<Column> {
        Ok(match (values, ty) {
            // Microseconds become datetimes in place, without a copy.
            (Values::Int(v), ColumnType::Timestamp) => {
                v.finish().into_datetime(TimeUnit::Microseconds, Some(TimeZone::UTC)).into_column()
            }
            (Values::Int(v), _) => v.finish().into_column(),
            (Values::Bool(v), _) => v.finish().into_column(),
            (Values::Text(v), _) => v.finish().into_column(),
            (Values::Float(v), _) => v.finish().into_column(),
        })
    }
}

fn to_id(cell: &Cell) -> Option<i64> {
    match cell {
        Cell::Int(v) => Some(*v),
        Cell::Float(v) if v.fract() == 0.0 && v.abs() < 9.0e15 => Some(*v as i64),
        Cell::Text(t) => t.trim().parse().ok(),
        _ => None,
    }
}

fn to_micros(cell: &Cell, timezone: &Tz) -> Option<i64> {
    match cell {
        Cell::Micros(v) => Some(*v),
        Cell::Date(date) => Some(local_midnight(*date, timezone)),
        Cell::Int(seconds) => seconds.checked_mul(MICROS_PER_SECOND),
        Cell::Float(seconds) if seconds.is_finite() => Some((seconds * MICROS_PER_SECOND as f64).round() as i64),
        Cell::Text(t) => parse_source_timestamp(t, timezone),
        _ => None,
    }
}

fn to_bool(cell: &Cell) -> Option<bool> {
    match cell {
        Cell::Bool(v) => Some(*v),
        Cell::Int(0) => Some(false),
        Cell::Int(1) => Some(true),
        Cell::Text(t) => match t.trim().to_ascii_lowercase().as_str() {
            "1" | "true" | "t" | "yes" | "y" => Some(true),
            "0" | "false" | "f" | "no" | "n" => Some(false),
            _ => None,
        },
        _ => None,
    }
}

fn to_text(cell: &Cell) -> Option<String> {
    match cell {
        Cell::Text(t) => Some(t.to_string()),
        Cell::Int(v) => Some(v.to_string()),
        Cell::Float(v) => Some(v.to_string()),
        Cell::Bool(v) => Some(v.to_string()),
        _ => None,
    }
}

fn to_number(cell: &Cell) -> Option<f64> {
    match cell {
        Cell::Int(v) => Some(*v as f64),
        Cell::Float(v) => Some(*v),
        Cell::Bool(v) => Some(f64::from(u8::from(*v))),
        Cell::Text(t) => t.trim().parse().ok(),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(ty: ColumnType, nullable: bool) -> ColumnSpec {
        ColumnSpec { name: "c", ty, required: true, nullable, alias: None }
    }

    #[test]
    fn integers_read_as_epoch_seconds_for_timestamps() {
        assert_eq!(to_micros(&Cell::Int(1_700_000_000), &Tz::UTC), Some(1_700_000_000_000_000));
    }

    #[test]
    fn a_calendar_date_is_local_midnight_native_or_text_and_a_timestamp_stays_utc() {
        let tz = chrono_tz::America::New_York;
        // 2026-10-01 00:00 in New York (EDT) is 04:00Z.
        let midnight = 1_790_827_200_000_000;
        let date = chrono::NaiveDate::from_ymd_opt(2026, 10, 1).unwrap_or_default();
        assert_eq!(to_micros(&Cell::Date(date), &tz), Some(midnight));
        assert_eq!(to_micros(&Cell::Text("2026-10-01".into()), &tz), Some(midnight));
        assert_eq!(to_micros(&Cell::Text("2026-10-01 00:00:00".into()), &tz), Some(midnight - 4 * 3_600_000_000));
    }

    #[test]
    fn a_surveying_column_records_the_first_bad_values_with_their_rows_and_stores_null() {
        let mut b = ColumnBuilder::new(spec(ColumnType::Timestamp, false), 4).surveying();
        for text in ["2026-01-01", "01/12/2026 10:00", "2026-01-02", "soon", "later", "never"] {
            assert_eq!(b.push(Cell::Text(text.into())), Ok(()));
        }
        let found = b.unreadable().cloned().unwrap_or_default();
        assert_eq!(found.count, 4);
        assert_eq!(
            found.examples,
            [
                "row 2: cannot read '01/12/2026 10:00' as a timestamp",
                "row 4: cannot read 'soon' as a timestamp",
                "row 5: cannot read 'later' as a timestamp"
            ]
        );
        assert_eq!(b.finish().map(|c| c.null_count()).ok(), Some(4));
    }

    #[test]
    fn booleans_accept_zero_and_one_but_not_two() {
        assert_eq!(to_bool(&Cell::Int(1)), Some(true));
        assert_eq!(to_bool(&Cell::Int(0)), Some(false));
        assert_eq!(to_bool(&Cell::Int(2)), None);
    }

    #[test]
    fn a_null_in_a_required_column_is_an_error() {
        let mut b = ColumnBuilder::new(spec(ColumnType::Id, false), 1);
        assert_eq!(b.push(Cell::Null), Err("NULL is not allowed here".to_string()));
    }

    #[test]
    fn unreadable_text_names_the_value() {
        let mut b = ColumnBuilder::new(spec(ColumnType::Timestamp, false), 1);
        assert_eq!(b.push(Cell::Text("yesterday".into())), Err("cannot read 'yesterday' as a timestamp".to_string()));
    }
}
