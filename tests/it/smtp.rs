//! A real SMTP server on loopback for the mail tests: EHLO, STARTTLS (with a self-signed
//! certificate for `localhost`, made here with openssl), MAIL, RCPT, DATA, QUIT. It keeps every
//! message it accepts.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::{Arc, Mutex};
use std::time::Duration;

#[derive(Debug, Clone)]
pub struct Received {
    pub to: Vec<String>,
    pub data: String,
    /// The message came over TLS (after STARTTLS).
    pub tls: bool,
}

pub struct SmtpServer {
    pub port: u16,
    received: Arc<Mutex<Vec<Received>>>,
    /// The certificate clients must trust (PEM), when STARTTLS is offered.
    pub ca_pem: Option<Vec<u8>>,
}

trait Stream: Read + Write + Send {}
impl<T: Read + Write + Send> Stream for T {}

impl SmtpServer {
    /// A server on a free port; `starttls` offers STARTTLS.
    pub fn start(starttls: bool) -> Self {
        Self::start_on(0, starttls)
    }

    pub fn start_on(port: u16, starttls: bool) -> Self {
        let listener = TcpListener::bind(("127.0.0.1", port)).unwrap();
        let port = listener.local_addr().unwrap().port();
        let received = Arc::new(Mutex::new(Vec::new()));
        let tls = starttls.then(self_signed);
        let ca_pem = tls.as_ref().map(|(pem, _)| pem.clone());
        let acceptor = tls.map(|(_, a)| Arc::new(a));
        let store = received.clone();
        std::thread::spawn(move || {
            for conn in listener.incoming() {
                let Ok(conn) = conn else { break };
                let (store, acceptor) = (store.clone(), acceptor.clone());
                std::thread::spawn(move || {
                    let _ = session(conn, store, acceptor);
                });
            }
        });
        Self {
            port,
            received,
            ca_pem,
        }
    }

    pub fn messages(&self) -> Vec<Received> {
        self.received.lock().unwrap().clone()
    }

    /// Waits (bounded) until `n` messages arrived.
    pub async fn wait_for(&self, n: usize) -> Vec<Received> {
        for _ in 0..200 {
            let got = self.messages();
            if got.len() >= n {
                return got;
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
        panic!("expected {n} messages, got {:?}", self.messages());
    }
}

fn self_signed() -> (Vec<u8>, openssl::ssl::SslAcceptor) {
    use openssl::asn1::Asn1Time;
    use openssl::ec::{EcGroup, EcKey};
    use openssl::hash::MessageDigest;
    use openssl::nid::Nid;
    use openssl::pkey::PKey;
    use openssl::ssl::{SslAcceptor, SslMethod};
    use openssl::x509::extension::SubjectAlternativeName;
    use openssl::x509::{X509Builder, X509NameBuilder};
    let group = EcGroup::from_curve_name(Nid::X9_62_PRIME256V1).unwrap();
    let key = PKey::from_ec_key(EcKey::generate(&group).unwrap()).unwrap();
    let mut name = X509NameBuilder::new().unwrap();
    name.append_entry_by_text("CN", "localhost").unwrap();
    let name = name.build();
    let mut b = X509Builder::new().unwrap();
    b.set_version(2).unwrap();
    b.set_subject_name(&name).unwrap();
    b.set_issuer_name(&name).unwrap();
    b.set_pubkey(&key).unwrap();
    b.set_not_before(&Asn1Time::days_from_now(0).unwrap())
        .unwrap();
    b.set_not_after(&Asn1Time::days_from_now(1).unwrap())
        .unwrap();
    let san = SubjectAlternativeName::new()
        .dns("localhost")
        .build(&b.x509v3_context(None, None))
        .unwrap();
    b.append_extension(san).unwrap();
    b.sign(&key, MessageDigest::sha256()).unwrap();
    let cert = b.build();
    let mut acceptor = SslAcceptor::mozilla_intermediate_v5(SslMethod::tls()).unwrap();
    acceptor.set_private_key(&key).unwrap();
    acceptor.set_certificate(&cert).unwrap();
    (cert.to_pem().unwrap(), acceptor.build())
}

fn session(
    conn: TcpStream,
    store: Arc<Mutex<Vec<Received>>>,
    acceptor: Option<Arc<openssl::ssl::SslAcceptor>>,
) -> std::io::Result<()> {
    conn.set_read_timeout(Some(Duration::from_secs(10)))?;
    let mut raw = Some(conn);
    let mut reader: BufReader<Box<dyn Stream>> =
        BufReader::new(Box::new(raw.as_ref().map(TcpStream::try_clone).unwrap()?));
    let mut tls = false;
    let mut to = Vec::new();
    write(&mut reader, "220 localhost ESMTP keyway-test\r\n")?;
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line)? == 0 {
            return Ok(());
        }
        let upper = line.trim_end().to_ascii_uppercase();
        if upper.starts_with("EHLO") {
            let offer = acceptor.is_some() && !tls;
            let mut reply = String::from("250-localhost\r\n");
            if offer {
                reply.push_str("250-STARTTLS\r\n");
            }
            reply.push_str("250 8BITMIME\r\n");
            write(&mut reader, &reply)?;
        } else if upper.starts_with("HELO")
            || upper.starts_with("NOOP")
            || upper.starts_with("RSET")
        {
            write(&mut reader, "250 OK\r\n")?;
        } else if upper == "STARTTLS" {
            let (Some(a), Some(tcp)) = (&acceptor, raw.take()) else {
                write(&mut reader, "454 TLS not available\r\n")?;
                continue;
            };
            write(&mut reader, "220 Ready to start TLS\r\n")?;
            let stream = a
                .accept(tcp)
                .map_err(|e| std::io::Error::other(e.to_string()))?;
            reader = BufReader::new(Box::new(stream));
            tls = true;
        } else if upper.starts_with("MAIL FROM") {
            to.clear();
            write(&mut reader, "250 OK\r\n")?;
        } else if upper.starts_with("RCPT TO") {
            to.push(
                line.trim_end()[8..]
                    .trim()
                    .trim_matches(['<', '>'])
                    .to_owned(),
            );
            write(&mut reader, "250 OK\r\n")?;
        } else if upper == "DATA" {
            write(&mut reader, "354 End data with <CR><LF>.<CR><LF>\r\n")?;
            let mut data = String::new();
            loop {
                let mut l = String::new();
                if reader.read_line(&mut l)? == 0 {
                    return Ok(());
                }
                if l == ".\r\n" {
                    break;
                }
                data.push_str(l.strip_prefix('.').unwrap_or(&l));
            }
            store.lock().unwrap().push(Received {
                to: to.clone(),
                data,
                tls,
            });
            write(&mut reader, "250 OK queued\r\n")?;
        } else if upper == "QUIT" {
            write(&mut reader, "221 Bye\r\n")?;
            return Ok(());
        } else {
            write(&mut reader, "502 Command not implemented\r\n")?;
        }
    }
}

fn write(reader: &mut BufReader<Box<dyn Stream>>, text: &str) -> std::io::Result<()> {
    let s = reader.get_mut();
    s.write_all(text.as_bytes())?;
    s.flush()
}
