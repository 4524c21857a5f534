//! Serving HTTPS: the certificate chain and private key, read from PEM files once at start,
//! made into a TLS acceptor (rustls with the `ring` provider; no OpenSSL). `ring` is the one
//! provider the build compiles in (sqlx and reqwest use it too), so rustls picks it by itself.
//!
//! Invariants: the server speaks TLS 1.2 and 1.3 with rustls' safe defaults and offers
//! HTTP/1.1 over ALPN; a certificate that does not match its key is refused at start, not at
//! the first handshake.

use std::{path::Path, sync::Arc};

use rustls::{
    ServerConfig,
    pki_types::{CertificateDer, PrivateKeyDer, pem::PemObject},
};
use tokio_rustls::TlsAcceptor;

use super::TlsFiles;

/// A certificate or key that cannot be served with.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    /// Only one of the two settings was given.
    #[error(
        "to serve HTTPS give both SEEDCORE_TLS_CERT and SEEDCORE_TLS_KEY (--tls-cert, \
         --tls-key); to serve plain HTTP give neither"
    )]
    Incomplete,
    /// A file cannot be read or holds no PEM item of the kind expected.
    #[error("cannot read the {what} from {path}: {why}")]
    Unreadable {
        /// "certificate chain" or "private key".
        what: &'static str,
        /// The file.
        path: String,
        /// What was wrong.
        why: String,
    },
    /// The files were read but rustls refused them (say, a key that is not the certificate's).
    #[error("cannot serve HTTPS with {cert} and {key}: {why}")]
    Refused {
        /// The certificate file.
        cert: String,
        /// The key file.
        key: String,
        /// What rustls said.
        why: rustls::Error,
    },
}

/// The acceptor for `files`.
pub(super) fn acceptor(files: &TlsFiles) -> Result<TlsAcceptor, TlsError> {
    let chain = certificates(&files.cert)?;
    let key = private_key(&files.key)?;
    let refused = |why| TlsError::Refused {
        cert: files.cert.display().to_string(),
        key: files.key.display().to_string(),
        why,
    };
    let mut config = ServerConfig::builder()
        .with_no_client_auth()
        .with_single_cert(chain, key)
        .map_err(refused)?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(TlsAcceptor::from(Arc::new(config)))
}

fn certificates(path: &Path) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let unreadable = |why: String| TlsError::Unreadable {
        what: "certificate chain",
        path: path.display().to_string(),
        why,
    };
    let chain = CertificateDer::pem_file_iter(path)
        .map_err(|err| unreadable(err.to_string()))?
        .collect::<Result<Vec<_>, _>>()
        .map_err(|err| unreadable(err.to_string()))?;
    if chain.is_empty() {
        return Err(unreadable("no CERTIFICATE section in the file".into()));
    }
    Ok(chain)
}

fn private_key(path: &Path) -> Result<PrivateKeyDer<'static>, TlsError> {
    PrivateKeyDer::from_pem_file(path).map_err(|err| TlsError::Unreadable {
        what: "private key",
        path: path.display().to_string(),
        why: err.to_string(),
    })
}
