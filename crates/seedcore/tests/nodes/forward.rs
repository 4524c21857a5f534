//! A TCP forwarder on the root end of a node's database link, to PostgreSQL on loopback (where
//! it listens alone): the node's connections pass through the link, so cutting the link cuts
//! them, while PostgreSQL sees nothing happen. Stops accepting when dropped.

use std::net::SocketAddr;

use tokio::{
    net::{TcpListener, TcpStream},
    task::JoinHandle,
};

pub struct Forwarder {
    pub address: SocketAddr,
    accept: JoinHandle<()>,
}

impl Forwarder {
    /// Forwards connections made to `listen` (port 0: the kernel's choice) to `target`.
    pub async fn start(listen: SocketAddr, target: SocketAddr) -> Forwarder {
        let listener = TcpListener::bind(listen).await.expect("bind the forwarder");
        let address = listener.local_addr().expect("address");
        let accept = tokio::spawn(async move {
            while let Ok((mut inbound, _)) = listener.accept().await {
                tokio::spawn(async move {
                    if let Ok(mut outbound) = TcpStream::connect(target).await {
                        let _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound).await;
                    }
                });
            }
        });
        Forwarder { address, accept }
    }
}

impl Drop for Forwarder {
    fn drop(&mut self) {
        self.accept.abort();
    }
}
