//! `opensend`: the one binary. Parses the command line, loads configuration and hands over to the library
//! crates; nothing here decides anything about email.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand};
use opensend_core::Permission;
use opensend_server::admin;
use opensend_server::app::{self, Application, EXIT_CONFIG};
use opensend_server::config::{Config, Vars};
use opensend_server::serve::{self, Roles};
use opensend_server::{setup, telemetry};
use opensend_store::Store;
use serde_json::json;

#[derive(Parser)]
#[command(
    name = "opensend",
    version,
    about = "Self-hostable, multi-tenant email platform with a Resend-compatible API.",
    long_about = "Self-hostable, multi-tenant email platform with a Resend-compatible API.\n\n\
        Configuration comes from the environment and from a .env file in the working directory \
        (see docs/configuration.md). With no configuration at all, `opensend serve` keeps its data in \
        SQLite under ./data/ and captures mail instead of sending it."
)]
struct Cli {
    /// Read settings from this file instead of ./.env (variables already in the environment win).
    #[arg(long, global = true, value_name = "PATH")]
    env_file: Option<PathBuf>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run everything in one process: the public API (PORT), the ingester (INGESTER_PORT), the SMTP
    /// listeners (SMTP_PORT, SMTPS_PORT, MX_PORT when set) and the delivery worker. Applies pending
    /// migrations first.
    Serve,
    /// Run only the public API (PORT), for deployments that split roles across machines.
    Api,
    /// Run only the ingester (INGESTER_PORT): provider events, inbound mail and job triggers.
    Ingester,
    /// Run only the SMTP listeners: the submission relay (SMTP_PORT with STARTTLS, SMTPS_PORT with
    /// implicit TLS; user `resend`, password an API key) and, when MX_PORT is set, inbound mail.
    Smtp,
    /// Run only the delivery worker: takes queued emails from the database and delivers them. Run as many
    /// as you like, on as many machines as you like, against one PostgreSQL.
    Worker,
    /// Trigger the ingester's background jobs (POST /jobs/*) every INGESTER_SCHEDULER_INTERVAL_SECONDS, for
    /// deployments that split roles (`serve` runs them itself). Needs INGESTER_JOB_TOKEN, and INGESTER_URL
    /// when the ingester is on another host.
    Scheduler,
    /// Apply pending database migrations and exit.
    Migrate,
    /// Write a .env file with fresh random secrets. Never replaces an existing file without --force.
    Setup {
        /// Where to write.
        #[arg(long, default_value = ".env")]
        path: PathBuf,
        /// Replace an existing file (its secrets are lost, and data encrypted under them with it).
        #[arg(long)]
        force: bool,
    },
    /// Operator tasks: organizations, API keys and their rate limits.
    #[command(subcommand)]
    Admin(AdminCommand),
}

#[derive(Args)]
struct Output {
    /// Print one JSON object instead of text.
    #[arg(long)]
    json: bool,
}

#[derive(Subcommand)]
enum AdminCommand {
    /// Create an organization (a tenant). Prints its id on the last line.
    CreateOrg {
        /// Display name of the organization.
        name: String,
        #[command(flatten)]
        output: Output,
    },
    /// Create an API key for an organization. Prints the token, once, on the last line: it cannot be
    /// shown again.
    CreateKey {
        /// Organization id (from `admin create-org`).
        #[arg(long = "org", value_name = "ORG_ID")]
        organization_id: uuid::Uuid,
        /// A name that tells the key apart from others.
        #[arg(long)]
        name: String,
        /// `full_access` (every route) or `sending_access` (send routes only).
        #[arg(long, default_value = "full_access", value_parser = parse_permission)]
        permission: Permission,
        /// Restrict a sending_access key to one sending domain.
        #[arg(long, value_name = "DOMAIN_ID")]
        domain_id: Option<uuid::Uuid>,
        #[command(flatten)]
        output: Output,
    },
    /// Give an organization, or one API key, its own rate limit (or --clear it). Takes effect on the next
    /// request on every node. A key's limit applies on top of its organization's.
    SetRateLimit {
        /// Organization id.
        #[arg(
            long = "org",
            value_name = "ORG_ID",
            required_unless_present = "key",
            conflicts_with = "key"
        )]
        organization_id: Option<uuid::Uuid>,
        /// API key id.
        #[arg(long, value_name = "KEY_ID")]
        key: Option<uuid::Uuid>,
        /// Requests per second (1 to 1000000).
        #[arg(
            long,
            value_name = "N",
            required_unless_present = "clear",
            requires = "burst"
        )]
        per_second: Option<u32>,
        /// Requests allowed at once before the per-second rate applies (1 to 1000000).
        #[arg(long, value_name = "M", requires = "per_second")]
        burst: Option<u32>,
        /// Remove the override: the organization returns to RATE_LIMIT_ORG_*, the key to its organization's.
        #[arg(long, conflicts_with_all = ["per_second", "burst"])]
        clear: bool,
        #[command(flatten)]
        output: Output,
    },
    /// Set an organization's own daily and monthly email quotas (UTC days and months). A quota left out
    /// returns to the deployment default (QUOTA_DAILY_EMAILS, QUOTA_MONTHLY_EMAILS).
    SetQuota {
        /// Organization id.
        #[arg(long = "org", value_name = "ORG_ID")]
        organization_id: uuid::Uuid,
        /// Emails per UTC day.
        #[arg(long, value_name = "N")]
        daily: Option<i64>,
        /// Emails per UTC month.
        #[arg(long, value_name = "N")]
        monthly: Option<i64>,
        #[command(flatten)]
        output: Output,
    },
    /// Re-seal every stored secret (webhook signing secrets, DKIM private keys) under
    /// WEBHOOK_SECRET_ENCRYPTION_KEY. Set the old key as WEBHOOK_SECRET_ENCRYPTION_KEY_PREVIOUS first; remove
    /// it once this has run. Safe to run while servers run, and to run again.
    RotateEncryptionKey {
        #[command(flatten)]
        output: Output,
    },
    /// Create a dashboard user. The password is read from standard input (one line) when it is not a
    /// terminal; otherwise one is generated and printed once. With --org the user becomes that
    /// organization's owner (an existing user is made owner, their password unchanged).
    CreateUser {
        /// The address they sign in with.
        #[arg(long)]
        email: String,
        /// Organization id (from `admin create-org`) to make them owner of.
        #[arg(long = "org", value_name = "ORG_ID")]
        organization_id: Option<uuid::Uuid>,
        #[command(flatten)]
        output: Output,
    },
    /// Set a dashboard user's password and sign them out everywhere (there is no reset by email). The
    /// password is read from standard input (one line) when it is not a terminal; otherwise one is
    /// generated and printed once.
    SetPassword {
        /// The address they sign in with.
        #[arg(long)]
        email: String,
        #[command(flatten)]
        output: Output,
    },
    /// Revoke an API key; it stops working on the next request. Prints its id on the last line.
    RevokeKey {
        /// API key id.
        id: uuid::Uuid,
        #[command(flatten)]
        output: Output,
    },
}

fn parse_permission(raw: &str) -> Result<Permission, String> {
    raw.parse()
        .map_err(|e: opensend_core::permission::UnknownPermission| e.to_string())
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    if let Err(message) = load_env_file(cli.env_file.as_deref()) {
        eprintln!("error: {message}");
        return ExitCode::from(EXIT_CONFIG);
    }
    let config = match Config::from_vars(&Vars::from_process()) {
        Ok(config) => config,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(EXIT_CONFIG);
        }
    };
    telemetry::init(config.log_format);
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    runtime.block_on(run(cli.command, config))
}

/// The password of `admin create-user` from standard input when it is piped in (its first line);
/// `None` on a terminal, where a password is generated instead.
/// The password piped in on standard input, or a generated one together with its text to show once.
fn piped_or_generated_password() -> Result<(secrecy::SecretString, Option<String>), String> {
    match read_password()? {
        Some(password) => Ok((password, None)),
        None => {
            let password =
                opensend_server::accounts::generate_password().map_err(|e| e.to_string())?;
            let shown = secrecy::ExposeSecret::expose_secret(&password).to_owned();
            Ok((password, Some(shown)))
        }
    }
}

fn read_password() -> Result<Option<secrecy::SecretString>, String> {
    use std::io::{BufRead, IsTerminal};
    let stdin = std::io::stdin();
    if stdin.is_terminal() {
        return Ok(None);
    }
    let mut line = String::new();
    stdin
        .lock()
        .read_line(&mut line)
        .map_err(|e| format!("cannot read the password from standard input: {e}"))?;
    let password = line.trim_end_matches(['\r', '\n']).to_owned();
    if password.is_empty() {
        return Ok(None);
    }
    Ok(Some(secrecy::SecretString::from(password)))
}

/// Loads `.env` (or `--env-file`) into the process environment without overriding what is already set.
fn load_env_file(path: Option<&std::path::Path>) -> Result<(), String> {
    let result = match path {
        Some(path) => dotenvy::from_path(path).map(|_| ()),
        None => match dotenvy::dotenv() {
            Err(e) if e.not_found() => Ok(()),
            other => other.map(|_| ()),
        },
    };
    result.map_err(|e| format!("cannot read the env file: {e}"))
}

async fn run(command: Command, config: Config) -> ExitCode {
    match command {
        Command::Serve => run_server(config, Roles::ALL).await,
        Command::Api => run_server(config, Roles::API).await,
        Command::Ingester => run_server(config, Roles::INGESTER).await,
        Command::Smtp => run_server(config, Roles::SMTP).await,
        Command::Worker => run_server(config, Roles::WORKER).await,
        Command::Scheduler => run_scheduler(config).await,
        Command::Migrate => match connect(&config).await {
            Ok(store) => match store.migrate().await {
                Ok(()) => {
                    println!("migrations applied to {}", config.database.url.redacted());
                    ExitCode::SUCCESS
                }
                Err(e) => fail(e),
            },
            Err(code) => code,
        },
        Command::Setup { path, force } => match setup::write_env_file(&path, force) {
            Ok(()) => {
                println!(
                    "wrote {} with fresh secrets (mode 0600); keep it private",
                    path.display()
                );
                ExitCode::SUCCESS
            }
            Err(e @ setup::SetupError::AlreadyExists(_)) => {
                eprintln!("error: {e}");
                ExitCode::from(EXIT_CONFIG)
            }
            Err(e) => fail(e),
        },
        Command::Admin(command) => match connect(&config).await {
            Ok(store) => {
                if let Err(e) = store.migrate().await {
                    return fail(e);
                }
                run_admin(&store, &config, command).await
            }
            Err(code) => code,
        },
    }
}

async fn run_admin(store: &Store, config: &Config, command: AdminCommand) -> ExitCode {
    match command {
        AdminCommand::RotateEncryptionKey { output } => {
            let secrets = match opensend_server::state::secret_box(config) {
                Ok(secrets) => secrets,
                Err(e) => return fail(e),
            };
            match opensend_server::secrets_at_rest::reseal_all(store, &secrets).await {
                Ok(report) if output.json => {
                    println!("{}", json!(report));
                    ExitCode::SUCCESS
                }
                Ok(report) => {
                    println!(
                        "re-sealed {} webhook signing secrets and {} DKIM keys under the current key ({} already were)",
                        report.webhook_secrets, report.dkim_keys, report.already_current
                    );
                    ExitCode::SUCCESS
                }
                Err(e) => fail(e),
            }
        }
        AdminCommand::CreateOrg { name, output } => {
            match admin::create_organization(store, &name).await {
                Ok(org) if output.json => {
                    println!(
                        "{}",
                        json!({"object": "organization", "id": org.id, "name": org.name, "created_at": opensend_server::api::timestamp(org.created_at)})
                    );
                    ExitCode::SUCCESS
                }
                Ok(org) => {
                    println!("created organization \"{}\"", org.name);
                    println!("{}", org.id);
                    ExitCode::SUCCESS
                }
                Err(e) => fail(e),
            }
        }
        AdminCommand::CreateKey {
            organization_id,
            name,
            permission,
            domain_id,
            output,
        } => {
            match admin::create_api_key(store, organization_id, &name, permission, domain_id).await
            {
                Ok((key, token)) if output.json => {
                    println!(
                        "{}",
                        json!({"object": "api_key", "id": key.id, "organization_id": key.organization_id, "name": key.name, "permission": key.permission, "domain_id": key.domain_id, "token": token.expose()})
                    );
                    ExitCode::SUCCESS
                }
                Ok((key, token)) => {
                    println!(
                        "created API key {} \"{}\" ({})",
                        key.id, key.name, key.permission
                    );
                    println!("the token below is shown only this once:");
                    println!("{}", token.expose());
                    ExitCode::SUCCESS
                }
                Err(e) => fail(e),
            }
        }
        AdminCommand::SetRateLimit {
            organization_id,
            key,
            per_second,
            burst,
            clear: _,
            output,
        } => {
            let target = match (organization_id, key) {
                (Some(id), _) => admin::RateLimitTarget::Organization(id),
                (None, Some(id)) => admin::RateLimitTarget::ApiKey(id),
                (None, None) => return fail("name an organization (--org) or an API key (--key)"),
            };
            let limit = per_second.zip(burst);
            match admin::set_rate_limit(store, target, limit).await {
                Ok(rate) => {
                    let (object, id) = match target {
                        admin::RateLimitTarget::Organization(id) => ("organization", id),
                        admin::RateLimitTarget::ApiKey(id) => ("api_key", id),
                    };
                    if output.json {
                        println!(
                            "{}",
                            json!({"object": object, "id": id, "rate_limit": rate.map(|r| json!({"per_second": r.per_second.get(), "burst": r.burst.get()}))})
                        );
                    } else {
                        match rate {
                            Some(rate) => println!("{object} rate limit set to {rate}"),
                            None => println!("{object} rate limit override removed"),
                        }
                        println!("{id}");
                    }
                    ExitCode::SUCCESS
                }
                Err(e @ admin::AdminError::InvalidRateLimit) => {
                    eprintln!("error: {e}");
                    ExitCode::from(EXIT_CONFIG)
                }
                Err(e) => fail(e),
            }
        }
        AdminCommand::SetQuota {
            organization_id,
            daily,
            monthly,
            output,
        } => match admin::set_email_quotas(store, organization_id, daily, monthly).await {
            Ok(()) if output.json => {
                println!(
                    "{}",
                    json!({"object": "organization", "id": organization_id, "daily_email_quota": daily, "monthly_email_quota": monthly})
                );
                ExitCode::SUCCESS
            }
            Ok(()) => {
                let show = |q: Option<i64>| q.map_or("the default".to_owned(), |n| n.to_string());
                println!(
                    "organization email quotas: daily {}, monthly {}",
                    show(daily),
                    show(monthly)
                );
                println!("{organization_id}");
                ExitCode::SUCCESS
            }
            Err(e @ admin::AdminError::InvalidQuota) => {
                eprintln!("error: {e}");
                ExitCode::from(EXIT_CONFIG)
            }
            Err(e) => fail(e),
        },
        AdminCommand::CreateUser {
            email,
            organization_id,
            output,
        } => {
            let (password, shown) = match piped_or_generated_password() {
                Ok(found) => found,
                Err(e) => return fail(e),
            };
            match admin::create_user(store, &email, password, organization_id).await {
                Ok((user, created)) => {
                    if output.json {
                        println!(
                            "{}",
                            json!({"object": "user", "id": user.id, "email": user.email, "created": created, "organization_id": organization_id, "role": organization_id.map(|_| "owner"), "password": if created { shown } else { None }})
                        );
                    } else {
                        match (created, organization_id) {
                            (true, Some(org)) => println!(
                                "created user {} as owner of organization {org}",
                                user.email
                            ),
                            (true, None) => println!("created user {}", user.email),
                            (false, Some(org)) => println!(
                                "made existing user {} owner of organization {org}",
                                user.email
                            ),
                            (false, None) => println!("user {} exists already", user.email),
                        }
                        if let (true, Some(password)) = (created, shown) {
                            println!("the password below is shown only this once:");
                            println!("{password}");
                        } else {
                            println!("{}", user.id);
                        }
                    }
                    ExitCode::SUCCESS
                }
                Err(e @ admin::AdminError::Account(_)) => {
                    eprintln!("error: {e}");
                    ExitCode::from(EXIT_CONFIG)
                }
                Err(e) => fail(e),
            }
        }
        AdminCommand::SetPassword { email, output } => {
            let (password, shown) = match piped_or_generated_password() {
                Ok(found) => found,
                Err(e) => return fail(e),
            };
            match admin::set_password(store, &email, password).await {
                Ok(user) if output.json => {
                    println!(
                        "{}",
                        json!({"object": "user", "id": user.id, "email": user.email, "password": shown})
                    );
                    ExitCode::SUCCESS
                }
                Ok(user) => {
                    println!("set the password of {} and signed them out", user.email);
                    if let Some(password) = shown {
                        println!("the password below is shown only this once:");
                        println!("{password}");
                    } else {
                        println!("{}", user.id);
                    }
                    ExitCode::SUCCESS
                }
                Err(e @ admin::AdminError::Account(_)) => {
                    eprintln!("error: {e}");
                    ExitCode::from(EXIT_CONFIG)
                }
                Err(e) => fail(e),
            }
        }
        AdminCommand::RevokeKey { id, output } => match admin::revoke_api_key(store, id).await {
            Ok(()) if output.json => {
                println!(
                    "{}",
                    json!({"object": "api_key", "id": id, "deleted": true})
                );
                ExitCode::SUCCESS
            }
            Ok(()) => {
                println!("revoked API key");
                println!("{id}");
                ExitCode::SUCCESS
            }
            Err(e) => fail(e),
        },
    }
}

async fn run_scheduler(config: Config) -> ExitCode {
    let shutdown = match serve::shutdown_signal() {
        Ok(shutdown) => shutdown,
        Err(e) => return fail(format!("cannot install signal handlers: {e}")),
    };
    let (stop, stopped) = tokio::sync::watch::channel(false);
    tokio::spawn(async move {
        shutdown.await;
        let _ = stop.send(true);
    });
    match opensend_server::jobs::scheduler::run_over_http(&config, stopped).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e @ opensend_server::jobs::scheduler::SchedulerError::NoToken) => {
            eprintln!("error: {e}");
            ExitCode::from(EXIT_CONFIG)
        }
        Err(e) => fail(e),
    }
}

async fn run_server(config: Config, roles: Roles) -> ExitCode {
    // Installed before listening: a signal sent as soon as the server reports it is ready must stop it
    // gracefully, not kill it.
    let shutdown = match serve::shutdown_signal() {
        Ok(shutdown) => shutdown,
        Err(e) => return fail(format!("cannot install signal handlers: {e}")),
    };
    let app = match Application::build(config, roles).await {
        Ok(app) => app,
        Err(e) => {
            eprintln!("error: {e}");
            tracing::error!("refusing to start");
            return ExitCode::from(e.exit_code());
        }
    };
    let stop = app.stop_handle();
    tokio::spawn(async move {
        shutdown.await;
        tracing::info!("shutting down: finishing requests in flight");
        stop.stop();
    });
    match app.wait().await {
        Ok(()) => {
            tracing::info!("stopped");
            ExitCode::SUCCESS
        }
        Err(e) => fail(e),
    }
}

async fn connect(config: &Config) -> Result<Store, ExitCode> {
    app::connect(config).await.map_err(|e| {
        eprintln!("error: {e}");
        ExitCode::FAILURE
    })
}

fn fail(error: impl std::fmt::Display) -> ExitCode {
    eprintln!("error: {error}");
    ExitCode::FAILURE
}
