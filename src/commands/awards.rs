//! `accolade awards export`: every award, sorted by badge then member, as CSV or JSON on
//! standard output, or as Open Badges 2.0 / 3.0 documents in a directory (see
//! [`crate::openbadges`]).

use super::{Outcome, connect, load_plan};
use crate::config::plan::Badge;
use crate::openbadges::{self, DataModel, Site, Version, bake::Image, sign::Signer};
use crate::sources;
use anyhow::{Context, Result, anyhow, bail};
use chrono::Utc;
use std::collections::HashMap;
use std::io::Write;
use std::path::{Path, PathBuf};

#[derive(Debug, Clone, clap::Args)]
pub struct Opts {
    #[command(subcommand)]
    pub action: Action,
}

#[derive(Debug, Clone, clap::Subcommand)]
pub enum Action {
    /// Write awards to standard output (csv, json) or as Open Badges documents to --out DIR.
    Export(ExportOpts),
}

#[derive(Debug, Clone, clap::Args)]
pub struct ExportOpts {
    /// csv (header badge_id,user_id,awarded_at,source), json (an array of objects), or
    /// openbadges-v2 / openbadges-v3 (one document per award, written to --out).
    #[arg(long, default_value = "csv")]
    pub format: Format,
    /// Only these badges (repeatable).
    #[arg(long = "badge", value_name = "ID")]
    pub badges: Vec<String>,
    /// The directory Open Badges documents are written to (laid out like their URLs).
    #[arg(long, value_name = "DIR")]
    pub out: Option<PathBuf>,
    /// Also sign each Open Badges 3.0 credential as a VC-JWT with this private key (PEM:
    /// Ed25519 for EdDSA, RSA for RS256), written beside it as .jwt.
    #[arg(long, value_name = "KEYFILE")]
    pub sign: Option<PathBuf>,
    /// The VC Data Model of Open Badges 3.0 credentials: 2.0 (Open Badges 3.0.3, the default)
    /// or 1.1 (for wallets that predate it).
    #[arg(long, value_name = "VERSION")]
    pub vc: Option<VcVersion>,
    /// Also write each award baked into its badge's image beside its document (.png or .svg):
    /// the badge's `image` file (PNG or SVG, relative to the config file) or, without one, the
    /// generated SVG.
    #[arg(long)]
    pub bake: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum VcVersion {
    #[value(name = "2.0")]
    V2,
    #[value(name = "1.1")]
    V1_1,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    Csv,
    Json,
    #[value(name = "openbadges-v2")]
    OpenBadgesV2,
    #[value(name = "openbadges-v3")]
    OpenBadgesV3,
}

pub async fn run(config: Option<&Path>, opts: Opts) -> Result<Outcome> {
    let Action::Export(export) = opts.action;
    let plan = load_plan(config)?;
    for id in &export.badges {
        if plan.badge(id).is_none() {
            bail!("--badge {id}: no badge with that id in the config");
        }
    }
    let version = match export.format {
        Format::OpenBadgesV2 => Some(Version::V2),
        Format::OpenBadgesV3 => Some(Version::V3),
        Format::Csv | Format::Json => None,
    };
    if let Some(version) = version {
        let path = crate::config::locate(config);
        let config_dir = path.parent().unwrap_or(Path::new(""));
        return export_open_badges(&plan, &export, version, config_dir).await;
    }
    if export.out.is_some() || export.sign.is_some() || export.vc.is_some() || export.bake {
        bail!("--out, --sign, --vc and --bake apply to --format openbadges-v2 and openbadges-v3 only");
    }
    let (db, store) = connect(&plan).await?;
    let awards = store.awards(&export.badges).await;
    super::disconnect(&db, &store).await;
    let awards = awards?;
    match export.format {
        Format::Json => {
            let mut out = std::io::stdout().lock();
            let written = serde_json::to_writer_pretty(&mut out, &awards)
                .map_err(anyhow::Error::from)
                .and_then(|()| writeln!(out).map_err(anyhow::Error::from))
                .and_then(|()| out.flush().context("writing the export"));
            match written {
                Err(e) if !super::is_broken_pipe(&e) => return Err(e),
                _ => {}
            }
        }
        _ => super::write_csv(
            &["badge_id", "user_id", "awarded_at", "source", "grant"],
            awards.iter().map(|a| {
                vec![a.badge_id.clone(), a.user_id.to_string(), a.awarded_at.clone(), a.source.clone(), a.grant.clone()]
            }),
        )?,
    }
    Ok(Outcome::Success)
}

async fn export_open_badges(
    plan: &crate::config::plan::Plan,
    export: &ExportOpts,
    version: Version,
    config_dir: &Path,
) -> Result<Outcome> {
    let issuer = plan.issuer.as_ref().ok_or_else(|| {
        anyhow!("--format openbadges-*: the config has no [issuer] (id, name, url, email) to issue the badges as")
    })?;
    let out =
        export.out.as_deref().ok_or_else(|| anyhow!("--format openbadges-*: give the directory with --out DIR"))?;
    let signer = match (&export.sign, version) {
        (Some(_), Version::V2) => bail!("--sign applies to openbadges-v3 (2.0 assertions here are hosted, not signed)"),
        (Some(path), Version::V3) => Some(Signer::from_file(path)?.published_at(&Site::new(issuer)?.jwks_url()?)),
        (None, _) => None,
    };
    let model = match (export.vc, version) {
        (Some(_), Version::V2) => {
            bail!("--vc applies to openbadges-v3 (2.0 assertions are not verifiable credentials)")
        }
        (Some(VcVersion::V1_1), Version::V3) => DataModel::V1_1,
        (Some(VcVersion::V2) | None, _) => DataModel::V2,
    };
    let proof_key = signer.as_ref().and_then(Signer::public_key_multibase);
    let site = Site::new(issuer)?.with_data_model(model).with_proof_key(proof_key);
    let badges: Vec<_> =
        plan.badges.iter().filter(|b| export.badges.is_empty() || export.badges.contains(&b.id)).collect();
    let images = if export.bake { Some(badge_images(&badges, config_dir)?) } else { None };
    let (db, store) = connect(plan).await?;
    let loaded = async {
        crate::store::migrate(&store).await?;
        let emails = sources::load_member_emails(&db, &plan.sources).await?;
        let ids: Vec<String> = badges.iter().map(|b| b.id.clone()).collect();
        let awards = store.award_records(&ids).await?;
        let unsalted: Vec<crate::store::AwardKey> = awards
            .iter()
            .filter(|a| a.salt.is_none())
            .map(|a| (a.badge_id.as_str(), a.user_id, a.grant.as_str()))
            .collect();
        if unsalted.is_empty() {
            return Ok::<_, anyhow::Error>((emails, awards));
        }
        store.assign_salts(&unsalted, Utc::now()).await?;
        // Read back: a concurrent export may have salted some of them first.
        Ok((emails, store.award_records(&ids).await?))
    }
    .await;
    super::disconnect(&db, &store).await;
    let (emails, awards) = loaded?;
    let emails = email_map(&emails)?;
    let extras = openbadges::Extras { signer: signer.as_ref(), images: images.as_ref() };
    let summary = openbadges::write_export(out, &site, version, &badges, &awards, &emails, extras).await?;
    let name = match version {
        Version::V2 => "Open Badges 2.0 assertion(s)",
        Version::V3 if site.verification_method().is_some() => {
            "Open Badges 3.0 credential(s) with Data Integrity proofs (eddsa-rdfc-2022), each also as a signed VC-JWT"
        }
        Version::V3 if signer.is_some() => {
            "Open Badges 3.0 credential(s), each also as a signed VC-JWT (an RSA key makes no Data Integrity proof)"
        }
        Version::V3 => "Open Badges 3.0 credential(s)",
    };
    let form = match (version, model) {
        (Version::V2, _) => "",
        (Version::V3, DataModel::V2) => " (VC Data Model 2.0)",
        (Version::V3, DataModel::V1_1) => " (VC Data Model 1.1)",
    };
    let baked = if export.bake { format!(", {} baked into badge images", summary.baked) } else { String::new() };
    println!(
        "wrote {} {name}{form} ({} revoked{baked}) for {} badge(s) to {}",
        summary.awards,
        summary.revoked,
        summary.badges,
        out.display()
    );
    for (what, list) in [
        ("the member has no email in the users source", &summary.without_email),
        ("the users source no longer returns the member", &summary.unknown_members),
    ] {
        if !list.is_empty() {
            let shown: Vec<String> = list.iter().take(10).map(|(b, u)| format!("{b}/{u}")).collect();
            let more = if list.len() > 10 { format!(" and {} more", list.len() - 10) } else { String::new() };
            eprintln!("skipped {} award(s): {what}: {}{more}", list.len(), shown.join(", "));
        }
    }
    Ok(Outcome::Success)
}

/// Each badge's image to bake awards into: its `image` file (a path relative to the config
/// file's folder; PNG or SVG, recognised by content), or the generated SVG when it has none.
/// Every badge whose image cannot be baked is named at once.
fn badge_images(badges: &[&Badge], config_dir: &Path) -> Result<HashMap<String, Image>> {
    let mut images = HashMap::new();
    let mut problems = Vec::new();
    for badge in badges {
        let image = match &badge.image {
            None => Ok(Image::Svg(openbadges::generated_svg(&badge.name))),
            Some(image) if url::Url::parse(image).is_ok() => Err(anyhow!(
                "its image '{image}' is a URL; baking needs the image as a file: set image to a PNG or SVG path \
                 relative to the config file (it is published under [issuer] url all the same)"
            )),
            Some(image) => {
                let file = config_dir.join(image);
                std::fs::read(&file)
                    .with_context(|| format!("cannot read its image {}", file.display()))
                    .and_then(|bytes| Image::from_bytes(bytes, &format!("its image {}", file.display())))
            }
        };
        match image {
            Ok(image) => {
                images.insert(badge.id.clone(), image);
            }
            Err(error) => problems.push(format!("badge '{}': {error:#}", badge.id)),
        }
    }
    if !problems.is_empty() {
        bail!("--bake: {}", problems.join("\n  "));
    }
    Ok(images)
}

/// `user_id -> email` from the loaded `(user_id, email)` frame.
fn email_map(frame: &polars::prelude::DataFrame) -> Result<HashMap<i64, Option<String>>> {
    let ids = frame.column("user_id").and_then(|c| c.i64().cloned()).context("users source: user_id")?;
    let emails = frame.column("email").and_then(|c| c.str().cloned()).context("users source: email")?;
    Ok(ids.iter().zip(emails.iter()).filter_map(|(id, email)| Some((id?, email.map(str::to_string)))).collect())
}
