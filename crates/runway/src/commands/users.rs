//! `runway user` and `runway token`: users (admins only) and API tokens. A new token is printed
//! alone on stdout, as `runway add` prints an id, so a script can take it:
//! `TOKEN=$(runway user add alice --role member)`.

use comfy_table::Cell;
use runway_api::users::{CreateTokenRequest, CreateUserRequest, Role};

use crate::cli::{Connection, Format, RoleArg, TokenCommand, UserCommand};
use crate::exit::{self, CliError};
use crate::output;

pub async fn user(connection: &Connection, command: UserCommand) -> Result<u8, CliError> {
    let client = super::client(connection)?;
    match command {
        UserCommand::Add { name, role } => {
            let role = match role {
                RoleArg::Admin => Role::Admin,
                RoleArg::Member => Role::Member,
            };
            let made = client.add_user(&CreateUserRequest { name, role }).await?;
            output::print_line(&made.secret)?;
            eprintln!(
                "runway: added {} `{}`; the token above is shown only this once",
                role.as_str(),
                made.user.name
            );
        }
        UserCommand::Ls(args) => {
            let users = client.users().await?.users;
            match args.format {
                Format::Json => output::print_json(&users)?,
                Format::Table => {
                    let mut table = output::table(&["NAME", "ROLE", "CREATED"]);
                    for user in &users {
                        table.add_row(vec![
                            Cell::new(&user.name),
                            Cell::new(user.role.as_str()),
                            Cell::new(output::when(user.created_at)),
                        ]);
                    }
                    output::print_table(&table)?;
                }
            }
        }
        UserCommand::Rm { name } => {
            client.remove_user(&name).await?;
            output::print_line(&format!(
                "user {name} removed with its tokens; its jobs stay"
            ))?;
        }
    }
    Ok(exit::OK)
}

pub async fn token(connection: &Connection, command: TokenCommand) -> Result<u8, CliError> {
    let client = super::client(connection)?;
    match command {
        TokenCommand::Create {
            user,
            expires,
            name,
        } => {
            let made = client
                .create_token(&CreateTokenRequest {
                    user,
                    name,
                    expires_in: expires,
                })
                .await?;
            output::print_line(&made.secret)?;
            let until = made
                .token
                .expires_at
                .map_or("until revoked".to_string(), |at| {
                    format!("until {}", output::when(at))
                });
            eprintln!(
                "runway: token {} of `{}`, valid {until}; shown only this once",
                made.token.id, made.token.user
            );
        }
        TokenCommand::Ls { user, output: args } => {
            let tokens = client.tokens(user.as_deref()).await?.tokens;
            match args.format {
                Format::Json => output::print_json(&tokens)?,
                Format::Table => {
                    let mut table =
                        output::table(&["ID", "USER", "PREFIX", "NAME", "CREATED", "EXPIRES"]);
                    for token in &tokens {
                        table.add_row(vec![
                            Cell::new(&token.id),
                            Cell::new(&token.user),
                            Cell::new(&token.prefix),
                            Cell::new(output::sanitize(&token.name)),
                            Cell::new(output::when(token.created_at)),
                            Cell::new(token.expires_at.map_or("never".into(), output::when)),
                        ]);
                    }
                    output::print_table(&table)?;
                }
            }
        }
        TokenCommand::Revoke { id } => {
            client.revoke_token(&id).await?;
            output::print_line(&format!("token {id} revoked"))?;
        }
    }
    Ok(exit::OK)
}
