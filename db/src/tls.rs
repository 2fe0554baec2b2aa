//! Connections to Postgres, in clear or over TLS as `DATABASE_URL` asks with libpq's
//! parameters: `sslmode=disable|prefer|allow` (clear; `prefer` and `allow` do not
//! upgrade), `require` (encrypted, the server certificate not checked — libpq's meaning
//! when no root certificate is given), `verify-ca` (the chain must lead to a trusted
//! root), `verify-full` (and the certificate must name the host). `sslrootcert=<file>`
//! names the roots (PEM); without it the system's roots are used. Managed Postgres
//! services require TLS; `verify-full` is what to use with them.

use crate::{DbError, DbResult};
use diesel::ConnectionError;
use diesel_async::{AsyncConnection, AsyncPgConnection};
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme};
use std::sync::Arc;

/// How the connection is protected.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    Clear,
    Require,
    VerifyCa,
    VerifyFull,
}

/// The URL without the TLS parameters tokio-postgres does not understand, the mode and
/// the root certificate file.
fn split(url: &str) -> Result<(String, Mode, Option<String>), String> {
    let mut parsed = url::Url::parse(url).map_err(|e| format!("invalid DATABASE_URL: {e}"))?;
    let mut mode = Mode::Clear;
    let mut root = None;
    let mut kept = Vec::new();
    for (k, v) in parsed.query_pairs() {
        match k.as_ref() {
            "sslmode" => {
                mode = match v.as_ref() {
                    "disable" | "allow" | "prefer" => Mode::Clear,
                    "require" => Mode::Require,
                    "verify-ca" => Mode::VerifyCa,
                    "verify-full" => Mode::VerifyFull,
                    other => return Err(format!("unsupported sslmode {other:?} in DATABASE_URL")),
                }
            }
            "sslrootcert" => root = Some(v.to_string()),
            _ => kept.push((k.to_string(), v.to_string())),
        }
    }
    if kept.is_empty() {
        parsed.set_query(None);
    } else {
        parsed.query_pairs_mut().clear().extend_pairs(kept);
    }
    Ok((parsed.to_string(), mode, root))
}

/// Opens one connection to `url`, over TLS when its `sslmode` asks for it.
pub async fn connect(url: &str) -> Result<AsyncPgConnection, ConnectionError> {
    let (plain_url, mode, root) = split(url).map_err(ConnectionError::BadConnection)?;
    if mode == Mode::Clear {
        return AsyncPgConnection::establish(&plain_url).await;
    }
    let config = client_config(mode, root.as_deref()).map_err(ConnectionError::BadConnection)?;
    let mut pg: tokio_postgres::Config = plain_url
        .parse()
        .map_err(|e| ConnectionError::BadConnection(format!("invalid DATABASE_URL: {e}")))?;
    pg.ssl_mode(tokio_postgres::config::SslMode::Require);
    let tls = tokio_postgres_rustls::MakeRustlsConnect::new(config);
    let (client, connection) = pg
        .connect(tls)
        .await
        .map_err(|e| ConnectionError::BadConnection(format!("TLS connection failed: {e}")))?;
    AsyncPgConnection::try_from_client_and_connection(client, connection).await
}

/// [`connect`] as a [`DbResult`].
pub async fn establish(url: &str) -> DbResult<AsyncPgConnection> {
    connect(url).await.map_err(DbError::from)
}

fn roots(file: Option<&str>) -> Result<RootCertStore, String> {
    let mut store = RootCertStore::empty();
    match file {
        Some(path) => {
            for cert in CertificateDer::pem_file_iter(path)
                .map_err(|e| format!("sslrootcert {path}: {e}"))?
            {
                let cert = cert.map_err(|e| format!("sslrootcert {path}: {e}"))?;
                store
                    .add(cert)
                    .map_err(|e| format!("sslrootcert {path}: {e}"))?;
            }
        }
        None => {
            for cert in rustls_native_certs::load_native_certs().certs {
                let _ = store.add(cert);
            }
        }
    }
    if store.is_empty() {
        return Err("no root certificate to verify the Postgres server with".into());
    }
    Ok(store)
}

fn client_config(mode: Mode, root: Option<&str>) -> Result<ClientConfig, String> {
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let builder = ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())?;
    let config = match mode {
        Mode::VerifyFull => builder
            .with_root_certificates(roots(root)?)
            .with_no_client_auth(),
        Mode::VerifyCa | Mode::Require | Mode::Clear => {
            let chain = if mode == Mode::VerifyCa {
                Some(
                    rustls::client::WebPkiServerVerifier::builder_with_provider(
                        Arc::new(roots(root)?),
                        provider.clone(),
                    )
                    .build()
                    .map_err(|e| e.to_string())?,
                )
            } else {
                None
            };
            builder
                .dangerous()
                .with_custom_certificate_verifier(Arc::new(Relaxed { provider, chain }))
                .with_no_client_auth()
        }
    };
    Ok(config)
}

/// The certificate checks of `require` and `verify-ca`: with `chain` (`verify-ca`) the
/// chain must verify but the name in the certificate is not checked; without
/// (`require`) the certificate is not checked. Handshake signatures always are.
#[derive(Debug)]
struct Relaxed {
    provider: Arc<rustls::crypto::CryptoProvider>,
    chain: Option<Arc<rustls::client::WebPkiServerVerifier>>,
}

impl ServerCertVerifier for Relaxed {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        let Some(chain) = &self.chain else {
            return Ok(ServerCertVerified::assertion());
        };
        match chain.verify_server_cert(end_entity, intermediates, server_name, ocsp, now) {
            Err(rustls::Error::InvalidCertificate(rustls::CertificateError::NotValidForName))
            | Err(rustls::Error::InvalidCertificate(
                rustls::CertificateError::NotValidForNameContext { .. },
            )) => Ok(ServerCertVerified::assertion()),
            other => other,
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.provider
            .signature_verification_algorithms
            .supported_schemes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tls_parameters_are_read_and_removed_from_the_url() {
        let (url, mode, root) = split(
            "postgres://u:p@db.example:5432/app?sslmode=verify-full&sslrootcert=/etc/ca.pem&application_name=x",
        )
        .unwrap();
        assert_eq!(url, "postgres://u:p@db.example:5432/app?application_name=x");
        assert_eq!(mode, Mode::VerifyFull);
        assert_eq!(root.as_deref(), Some("/etc/ca.pem"));
        let (url, mode, _) = split("postgres://u@h/db").unwrap();
        assert_eq!((url.as_str(), mode), ("postgres://u@h/db", Mode::Clear));
        assert!(split("postgres://u@h/db?sslmode=sometimes").is_err());
    }
}
