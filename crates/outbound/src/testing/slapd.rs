//! OpenLDAP's `slapd` (Debian's `slapd` package) with a throwaway configuration and database.

use std::collections::HashSet;
use std::fs::{self, File};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use ldap3::{LdapConnAsync, LdapConnSettings, LdapResult};
use tempfile::TempDir;

/// The suffix of the directory.
const BASE: &str = "dc=example,dc=org";

/// The DN slapd's configuration makes all-powerful, used to set the directory up.
const ROOT_DN: &str = "cn=admin,dc=example,dc=org";

/// The DN a connector binds as: an ordinary entry with write access to everything, held to
/// slapd's default size limit of 500 entries per search but not in paged searches, as an
/// administrator sets up an account that synchronises a directory.
const BIND_DN: &str = "cn=cadre,dc=example,dc=org";

/// How long slapd may take to answer a bind after being started.
const STARTUP: Duration = Duration::from_secs(15);

/// Where distributions keep OpenLDAP's schema files.
const SCHEMA_DIRS: &[&str] = &["/etc/ldap/schema", "/etc/openldap/schema"];

/// Where Debian keeps slapd's backend modules.
const MODULE_DIR: &str = "/usr/lib/ldap";

/// A running slapd on a free port of 127.0.0.1, with `dc=example,dc=org`, `ou=people` and
/// `ou=groups` in it; killed when dropped, its data gone with it.
pub struct Slapd {
    /// The slapd executable.
    program: PathBuf,
    /// Its configuration, database and log.
    dir: TempDir,
    /// The port it listens on, the same across restarts.
    port: u16,
    /// The password of [`BIND_DN`].
    password: String,
    /// The password of [`ROOT_DN`].
    root_password: String,
    /// The process, while it runs.
    process: Option<Child>,
}

impl Slapd {
    /// A fresh slapd, or `None` (after saying so) when slapd is not installed.
    ///
    /// Panics when slapd is installed but does not start.
    pub async fn start() -> Option<Self> {
        let Some(program) = find_slapd() else {
            return super::skipped(
                "outbound LDAP test",
                "slapd is not installed",
                "Install Debian's slapd package (or set SLAPD to its path) to run it.",
            );
        };
        let dir = tempfile::tempdir()
            .unwrap_or_else(|error| panic!("no temporary directory for slapd: {error}"));
        let mut slapd = Self {
            program,
            dir,
            port: super::free_port(),
            password: random_password(),
            root_password: random_password(),
            process: None,
        };
        slapd.configure();
        slapd.start_again().await;
        slapd.populate().await;
        Some(slapd)
    }

    /// Its URL: `ldap://127.0.0.1:<port>`.
    pub fn url(&self) -> String {
        format!("ldap://127.0.0.1:{}", self.port)
    }

    /// The DN to bind as: it may write everything, and page through any number of entries.
    pub fn bind_dn(&self) -> &str {
        BIND_DN
    }

    /// The password of [`Slapd::bind_dn`].
    pub fn password(&self) -> &str {
        &self.password
    }

    /// The suffix of the directory, `dc=example,dc=org`.
    pub fn base(&self) -> &str {
        BASE
    }

    /// Where people go: `ou=people,dc=example,dc=org`.
    pub fn people_dn(&self) -> String {
        format!("ou=people,{BASE}")
    }

    /// Where groups go: `ou=groups,dc=example,dc=org`.
    pub fn groups_dn(&self) -> String {
        format!("ou=groups,{BASE}")
    }

    /// Kills slapd: the directory is down until [`Slapd::start_again`], its data kept.
    pub fn stop(&mut self) {
        if let Some(mut process) = self.process.take() {
            // It may have died already; either way, it is gone once waited for.
            let _ = process.kill();
            let _ = process.wait();
        }
    }

    /// Starts slapd (again) on the same port with the same data, once it answers binds.
    ///
    /// Panics when it does not come up.
    pub async fn start_again(&mut self) {
        self.stop();
        let log = File::create(self.path("slapd.log"))
            .unwrap_or_else(|error| panic!("cannot create slapd's log: {error}"));
        let process = Command::new(&self.program)
            .arg("-f")
            .arg(self.path("slapd.conf"))
            .args(["-h", &format!("{}/", self.url()), "-d", "0"])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .unwrap_or_else(|error| panic!("cannot run {}: {error}", self.program.display()));
        self.process = Some(process);
        self.wait_until_ready().await;
    }

    /// `name` in its directory.
    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// Writes slapd.conf and creates the database directory.
    fn configure(&self) {
        let schema = SCHEMA_DIRS
            .iter()
            .map(Path::new)
            .find(|dir| dir.join("core.schema").is_file())
            .unwrap_or_else(|| panic!("OpenLDAP's schema files are in none of {SCHEMA_DIRS:?}"));
        let modules = if Path::new(MODULE_DIR).join("back_mdb.la").is_file() {
            format!("modulepath {MODULE_DIR}\nmoduleload back_mdb\n")
        } else {
            String::new()
        };
        let db = self.path("db");
        fs::create_dir(&db)
            .unwrap_or_else(|error| panic!("cannot create slapd's database directory: {error}"));
        let dir = self.dir.path().display();
        let schema = schema.display();
        let root_password = &self.root_password;
        let config = format!(
            "include \"{schema}/core.schema\"\n\
             include \"{schema}/cosine.schema\"\n\
             include \"{schema}/inetorgperson.schema\"\n\
             {modules}\
             pidfile \"{dir}/slapd.pid\"\n\
             argsfile \"{dir}/slapd.args\"\n\
             database mdb\n\
             maxsize 104857600\n\
             suffix \"{BASE}\"\n\
             rootdn \"{ROOT_DN}\"\n\
             rootpw \"{root_password}\"\n\
             directory \"{db}\"\n\
             index objectClass eq\n\
             index uid,businessCategory eq\n\
             limits dn.exact=\"{BIND_DN}\" size.soft=500 size.hard=500 size.prtotal=unlimited\n\
             access to attrs=userPassword by anonymous auth by * none\n\
             access to * by dn.exact=\"{BIND_DN}\" write by * none\n",
            db = db.display(),
        );
        fs::write(self.path("slapd.conf"), config)
            .unwrap_or_else(|error| panic!("cannot write slapd.conf: {error}"));
    }

    /// Waits until slapd answers a bind as [`ROOT_DN`].
    async fn wait_until_ready(&mut self) {
        let deadline = Instant::now() + STARTUP;
        loop {
            if let Some(process) = self.process.as_mut()
                && let Ok(Some(status)) = process.try_wait()
            {
                panic!("slapd exited ({status}): {}", self.log());
            }
            if self.root_bind().await.is_ok() {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "slapd did not answer within {STARTUP:?}: {}",
                self.log()
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// A connection bound as [`ROOT_DN`].
    async fn root_bind(&self) -> Result<ldap3::Ldap, ldap3::LdapError> {
        let settings = LdapConnSettings::new().set_conn_timeout(Duration::from_secs(1));
        let (conn, mut ldap) = LdapConnAsync::with_settings(settings, &self.url()).await?;
        ldap3::drive!(conn);
        ldap.with_timeout(Duration::from_secs(5))
            .simple_bind(ROOT_DN, &self.root_password)
            .await?
            .success()?;
        Ok(ldap)
    }

    /// Adds the suffix, [`BIND_DN`], `ou=people` and `ou=groups`.
    async fn populate(&self) {
        let entries: [(String, Vec<(&str, &str)>); 4] = [
            (
                BASE.to_owned(),
                vec![
                    ("objectClass", "dcObject"),
                    ("objectClass", "organization"),
                    ("dc", "example"),
                    ("o", "Example"),
                ],
            ),
            (
                BIND_DN.to_owned(),
                vec![
                    ("objectClass", "organizationalRole"),
                    ("objectClass", "simpleSecurityObject"),
                    ("cn", "cadre"),
                    ("userPassword", &self.password),
                ],
            ),
            (
                self.people_dn(),
                vec![("objectClass", "organizationalUnit"), ("ou", "people")],
            ),
            (
                self.groups_dn(),
                vec![("objectClass", "organizationalUnit"), ("ou", "groups")],
            ),
        ];
        let mut ldap = self
            .root_bind()
            .await
            .unwrap_or_else(|error| panic!("cannot bind to slapd: {error}"));
        for (dn, values) in entries {
            let mut attributes: Vec<(&str, HashSet<&str>)> = Vec::new();
            for (attribute, value) in values {
                match attributes.iter_mut().find(|(name, _)| *name == attribute) {
                    Some((_, set)) => {
                        set.insert(value);
                    }
                    None => attributes.push((attribute, [value].into())),
                }
            }
            ldap.add(&dn, attributes)
                .await
                .and_then(LdapResult::success)
                .unwrap_or_else(|error| panic!("cannot add {dn} to slapd: {error}"));
        }
        // The connection's end is of no interest.
        let _ = ldap.unbind().await;
    }

    /// What slapd wrote to its log.
    fn log(&self) -> String {
        fs::read_to_string(self.path("slapd.log")).unwrap_or_default()
    }
}

impl Drop for Slapd {
    fn drop(&mut self) {
        self.stop();
    }
}

/// The slapd executable: `SLAPD` if set, else `/usr/sbin/slapd`, else `slapd` on the `PATH`.
fn find_slapd() -> Option<PathBuf> {
    if let Some(program) = std::env::var_os("SLAPD") {
        let program = PathBuf::from(program);
        return program.is_file().then_some(program);
    }
    let installed = PathBuf::from("/usr/sbin/slapd");
    if installed.is_file() {
        return Some(installed);
    }
    std::env::split_paths(&std::env::var_os("PATH").unwrap_or_default())
        .map(|dir| dir.join("slapd"))
        .find(|program| program.is_file())
}

/// 32 random hexadecimal digits.
fn random_password() -> String {
    let mut bytes = [0u8; 16];
    getrandom::fill(&mut bytes)
        .unwrap_or_else(|error| panic!("no randomness for a password: {error}"));
    hex::encode(bytes)
}
