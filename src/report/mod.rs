//! The administrators' report: one self-contained HTML page (inline CSS and SVG, no script,
//! no network) showing, per badge, its recipients over time as a chart, its recipient count,
//! status and rule in words, then the leaderboard's top 20.
//!
//! Owns the page's layout and the charts' geometry; [`crate::commands::report`] gathers the
//! data. Revoked awards are left out everywhere, as on the dashboard.

use crate::config::plan::{Badge, BadgeStatus};
use crate::store::{DailyAwards, LeaderboardRow};
use chrono::{DateTime, NaiveDate, Utc};
use std::collections::BTreeMap;
use std::fmt::Write as _;

/// Everything the page shows.
pub struct ReportData<'a> {
    pub title: String,
    pub generated_at: DateTime<Utc>,
    pub badges: Vec<&'a Badge>,
    /// Recipients per badge and day (any order).
    pub daily: Vec<DailyAwards>,
    /// The top of the leaderboard, best first.
    pub leaderboard: Vec<LeaderboardRow>,
}

/// The chart's drawing area, in SVG user units.
const WIDTH: f64 = 560.0;
const HEIGHT: f64 = 200.0;
const LEFT: f64 = 56.0;
const RIGHT: f64 = 16.0;
const TOP: f64 = 16.0;
const BOTTOM: f64 = 36.0;

/// Renders the page.
pub fn render(data: &ReportData) -> String {
    let mut by_badge: BTreeMap<&str, Vec<(NaiveDate, i64)>> = BTreeMap::new();
    for row in &data.daily {
        if let Ok(day) = NaiveDate::parse_from_str(&row.day, "%Y-%m-%d") {
            by_badge.entry(row.badge_id.as_str()).or_default().push((day, row.awards));
        }
    }
    let total: i64 = data.daily.iter().map(|d| d.awards).sum();
    let mut html = String::with_capacity(64 * 1024);
    let title = escape(&data.title);
    let _ = write!(
        html,
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n\
         <title>{title}</title>\n<style>{STYLE}</style>\n</head>\n<body>\n<header>\n<h1>{title}</h1>\n\
         <p class=\"meta\">Generated {} · {} badge(s) · {total} award(s) in force</p>\n</header>\n<main>\n\
         <section id=\"badges\">\n<h2>Badges</h2>\n",
        escape(&crate::openbadges::timestamp(data.generated_at)),
        data.badges.len(),
    );
    // One time axis for every chart, so badges compare at a glance.
    let days = by_badge.values().flatten().map(|(day, _)| *day);
    let range = days.clone().min().zip(days.max());
    for badge in &data.badges {
        let days = by_badge.remove(badge.id.as_str()).unwrap_or_default();
        badge_card(&mut html, badge, days, range);
    }
    html.push_str("</section>\n");
    leaderboard(&mut html, &data.leaderboard);
    html.push_str("</main>\n</body>\n</html>\n");
    html
}

fn badge_card(
    html: &mut String,
    badge: &Badge,
    mut days: Vec<(NaiveDate, i64)>,
    range: Option<(NaiveDate, NaiveDate)>,
) {
    days.sort();
    let recipients: i64 = days.iter().map(|(_, n)| n).sum();
    let status = match badge.status {
        BadgeStatus::Published => "published",
        BadgeStatus::Disabled => "disabled",
    };
    let _ = write!(
        html,
        "<article class=\"badge\" data-badge=\"{id}\" data-recipients=\"{recipients}\">\n\
         <h3>{name} <span class=\"status {status}\">{status}</span></h3>\n\
         <p class=\"rule\">{rule}</p>\n\
         <dl><dt>Recipients</dt><dd class=\"recipients\">{recipients}</dd>\
         <dt>Points</dt><dd>{points}</dd><dt>Rule type</dt><dd>{kind}</dd><dt>Id</dt><dd><code>{id}</code></dd></dl>\n",
        id = escape(&badge.id),
        name = escape(&badge.name),
        rule = escape(&badge.criteria_narrative()),
        points = badge.points,
        kind = badge.criterion.type_name(),
    );
    chart(html, &badge.name, &days, range);
    html.push_str("</article>\n");
}

/// Cumulative recipients against time (the same axis for every badge: from the first to the
/// last day any badge was awarded), as an inline SVG step line.
fn chart(html: &mut String, name: &str, days: &[(NaiveDate, i64)], range: Option<(NaiveDate, NaiveDate)>) {
    let label = format!("Recipients of {} over time", name);
    let _ = write!(
        html,
        "<svg class=\"chart\" viewBox=\"0 0 {WIDTH} {HEIGHT}\" width=\"{WIDTH}\" height=\"{HEIGHT}\" \
         role=\"img\" aria-label=\"{}\">\n<title>{}</title>\n",
        escape(&label),
        escape(&label)
    );
    let (Some((first, last)), false) = (range, days.is_empty()) else {
        let _ = write!(
            html,
            "<text class=\"empty\" x=\"{}\" y=\"{}\" text-anchor=\"middle\">No recipients yet</text>\n</svg>\n",
            WIDTH / 2.0,
            HEIGHT / 2.0
        );
        return;
    };
    let total: i64 = days.iter().map(|(_, n)| n).sum();
    // One extra day on the right, so a single day still spans the chart.
    let span = (last - first).num_days().max(0) as f64 + 1.0;
    let plot_w = WIDTH - LEFT - RIGHT;
    let plot_h = HEIGHT - TOP - BOTTOM;
    let x = |day: NaiveDate| LEFT + plot_w * ((day - first).num_days() as f64 / span);
    let y = |count: i64| TOP + plot_h * (1.0 - count as f64 / total.max(1) as f64);
    let mut path = format!("M{:.1},{:.1}", x(first), y(0));
    let mut running = 0;
    for (day, count) in days {
        running += count;
        let _ = write!(path, " H{:.1} V{:.1}", x(*day), y(running));
    }
    let _ = write!(path, " H{:.1}", LEFT + plot_w);
    let area = format!("{path} V{:.1} H{:.1} Z", y(0), x(first));
    let bottom = TOP + plot_h;
    let _ = write!(
        html,
        "<line class=\"axis\" x1=\"{LEFT}\" y1=\"{bottom}\" x2=\"{}\" y2=\"{bottom}\"/>\
         <line class=\"axis\" x1=\"{LEFT}\" y1=\"{TOP}\" x2=\"{LEFT}\" y2=\"{bottom}\"/>\n\
         <path class=\"area\" d=\"{area}\"/>\n<path class=\"line\" d=\"{path}\"/>\n\
         <text class=\"tick\" x=\"{}\" y=\"{}\" text-anchor=\"end\">{total}</text>\
         <text class=\"tick\" x=\"{}\" y=\"{bottom}\" text-anchor=\"end\">0</text>\n\
         <text class=\"tick\" x=\"{LEFT}\" y=\"{}\">{}</text>\
         <text class=\"tick\" x=\"{}\" y=\"{}\" text-anchor=\"end\">{}</text>\n</svg>\n",
        LEFT + plot_w,
        LEFT - 6.0,
        TOP + 4.0,
        LEFT - 6.0,
        HEIGHT - 12.0,
        first,
        LEFT + plot_w,
        HEIGHT - 12.0,
        last,
    );
}

fn leaderboard(html: &mut String, rows: &[LeaderboardRow]) {
    html.push_str("<section id=\"leaderboard\">\n<h2>Leaderboard (top 20)</h2>\n");
    if rows.is_empty() {
        html.push_str("<p class=\"empty\">No member holds a badge yet.</p>\n</section>\n");
        return;
    }
    html.push_str(
        "<table>\n<thead><tr><th>Rank</th><th>Member</th><th>Points</th><th>Badges</th></tr></thead>\n<tbody>\n",
    );
    for row in rows {
        let _ = writeln!(
            html,
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            row.rank, row.user_id, row.points, row.badges
        );
    }
    html.push_str("</tbody>\n</table>\n</section>\n");
}

/// Text made safe for HTML content and attribute values.
fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for ch in text.chars() {
        match ch {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            other => out.push(other),
        }
    }
    out
}

const STYLE: &str = "\
body{font-family:system-ui,-apple-system,'Segoe UI',sans-serif;margin:0;background:#f5f6f8;color:#1d2330}\
header{background:#2f5d8a;color:#fff;padding:20px 32px}header h1{margin:0 0 4px}.meta{margin:0;opacity:.85}\
main{padding:16px 32px;max-width:1240px}\
#badges{display:grid;grid-template-columns:repeat(auto-fill,minmax(600px,1fr));gap:16px}#badges h2{grid-column:1/-1}\
.badge{background:#fff;border-radius:8px;padding:12px 16px;box-shadow:0 1px 3px rgba(0,0,0,.12)}\
.badge h3{margin:4px 0}.rule{color:#444;margin:4px 0 8px}\
dl{display:grid;grid-template-columns:auto 1fr auto 1fr;gap:2px 12px;margin:0 0 8px}dt{color:#666}dd{margin:0}\
.status{font-size:.7em;padding:2px 8px;border-radius:10px;vertical-align:middle}\
.status.published{background:#dff3e4;color:#17692f}.status.disabled{background:#eee;color:#666}\
.chart .axis{stroke:#999;stroke-width:1}.chart .line{fill:none;stroke:#2f5d8a;stroke-width:2}\
.chart .area{fill:#2f5d8a;fill-opacity:.15;stroke:none}.chart text{font-size:11px;fill:#555}\
table{border-collapse:collapse;background:#fff;min-width:420px}th,td{padding:6px 12px;border-bottom:1px solid #e3e5ea;text-align:right}\
th:nth-child(2),td:nth-child(2){text-align:left}";

#[cfg(test)]
mod tests {
    use super::escape;

    #[test]
    fn markup_in_names_is_escaped() {
        assert_eq!(escape("<b>\"Tom & Jerry's\"</b>"), "&lt;b&gt;&quot;Tom &amp; Jerry&#39;s&quot;&lt;/b&gt;");
    }
}
