using System.Net.Security;
using System.Security.Authentication;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;

namespace SharedLvm.Grpc.Security;

/// <summary>Where a daemon's TLS material lives; scripts/pki writes these.</summary>
public sealed record TlsFiles(string CaFile, string CertificateFile, string KeyFile)
{
    /// <summary>The files of <paramref name="name"/> in a directory laid out by scripts/pki: ca.crt, NAME.crt, NAME.key.</summary>
    public static TlsFiles InPkiDirectory(string directory, string name) =>
        new(Path.Combine(directory, "ca.crt"), Path.Combine(directory, name + ".crt"), Path.Combine(directory, name + ".key"));

    /// <summary>The daemons' command-line switches for these files.</summary>
    public string[] ToServerArgs() => ["--tls-ca", CaFile, "--tls-cert", CertificateFile, "--tls-key", KeyFile];
}

/// <summary>
/// The cluster's trust: its CA, this daemon's certificate and key. Every peer is verified against
/// the cluster CA alone (not the system store: a public CA must not be able to mint a node), and its
/// identity is the certificate's CN, its role the OU (scripts/pki).
/// </summary>
public sealed class ClusterTls : IDisposable
{
    private static readonly string OrganizationalUnitOid = "2.5.4.11";
    private readonly TimeProvider _time;

    private ClusterTls(X509Certificate2 authority, X509Certificate2? certificate, TimeProvider time)
    {
        Authority = authority;
        Certificate = certificate;
        _time = time;
    }

    public X509Certificate2 Authority { get; }

    /// <summary>This side's certificate; null for a client that authenticates with a bearer token.</summary>
    public X509Certificate2? Certificate { get; }

    /// <summary>This side's identity, from its certificate.</summary>
    public PeerIdentity? Identity => Certificate is null ? null : IdentityOf(Certificate);

    /// <summary>Only the CA, to verify servers: a client that authenticates with a bearer token.</summary>
    public static ClusterTls TrustOnly(string caFile)
    {
        if (!File.Exists(caFile))
        {
            throw new TlsConfigurationException($"TLS CA certificate {caFile} does not exist");
        }

        return new ClusterTls(X509Certificate2.CreateFromPem(File.ReadAllText(caFile)), null, TimeProvider.System);
    }

    /// <summary>
    /// Loads and checks the files: each exists, the key is not readable by everyone, the certificate
    /// was issued by the CA, is in its validity period and names a role. Every failure names the file.
    /// </summary>
    public static ClusterTls Load(TlsFiles files, TimeProvider? time = null)
    {
        foreach (var (what, path) in new[] { ("CA certificate", files.CaFile), ("certificate", files.CertificateFile), ("key", files.KeyFile) })
        {
            if (!File.Exists(path))
            {
                throw new TlsConfigurationException($"TLS {what} {path} does not exist (scripts/pki creates it; --insecure runs without TLS, for development only)");
            }
        }

        CheckKeyPermissions(files.KeyFile);
        X509Certificate2 authority;
        X509Certificate2 certificate;
        try
        {
            authority = X509Certificate2.CreateFromPem(File.ReadAllText(files.CaFile));
            certificate = X509Certificate2.CreateFromPemFile(files.CertificateFile, files.KeyFile);
        }
        catch (CryptographicException e)
        {
            throw new TlsConfigurationException($"TLS files {files.CertificateFile} / {files.KeyFile} / {files.CaFile} can't be loaded: {e.Message}", e);
        }

        var tls = new ClusterTls(authority, certificate, time ?? TimeProvider.System);
        var own = tls.Verify(certificate);
        if (own.Identity is null)
        {
            tls.Dispose();
            throw new TlsConfigurationException($"own certificate {files.CertificateFile} is refused: {own.Error}");
        }

        return tls;
    }

    /// <summary>
    /// A key anyone on the host can read is a key anyone on the host can use to be this daemon (and
    /// a tokens file anyone can write is a way to mint an admin).
    /// </summary>
    public static void CheckKeyPermissions(string secretFile, string what = "TLS key")
    {
        var mode = File.GetUnixFileMode(secretFile);
        if ((mode & (UnixFileMode.OtherRead | UnixFileMode.OtherWrite | UnixFileMode.GroupWrite)) != 0)
        {
            throw new TlsConfigurationException(
                $"{what} {secretFile} is readable or writable by others (mode {Convert.ToString((int)mode, 8).PadLeft(4, '0')}); chmod 600 {secretFile}");
        }
    }

    /// <summary>Checks a peer's certificate against the cluster CA; the identity, or why not.</summary>
    public CertificateCheck Verify(X509Certificate2 peer)
    {
        if (CheckValidity(peer) is { } invalid)
        {
            return CertificateCheck.Refused(invalid);
        }

        var now = _time.GetUtcNow();

        using var chain = new X509Chain();
        chain.ChainPolicy.TrustMode = X509ChainTrustMode.CustomRootTrust;
        chain.ChainPolicy.CustomTrustStore.Add(Authority);
        chain.ChainPolicy.RevocationMode = X509RevocationMode.NoCheck;
        chain.ChainPolicy.VerificationTime = now.UtcDateTime;
        if (!chain.Build(peer))
        {
            var reasons = string.Join("; ", chain.ChainStatus.Select(s => s.StatusInformation.Trim()).Where(s => s.Length > 0).Distinct(StringComparer.Ordinal));
            return CertificateCheck.Refused($"certificate CN={Cn(peer)} (issuer {peer.Issuer}) was not issued by this cluster's CA: {reasons}");
        }

        return IdentityOf(peer) is { } identity
            ? CertificateCheck.Accepted(identity)
            : CertificateCheck.Refused($"certificate CN={Cn(peer)} names no SharedLvm role in its OU ({string.Join(", ", PeerRoles.Known)})");
    }

    /// <summary>Null while <paramref name="peer"/> is within its validity period; otherwise why not.</summary>
    public string? CheckValidity(X509Certificate2 peer)
    {
        var now = _time.GetUtcNow();
        if (now < peer.NotBefore.ToUniversalTime())
        {
            return $"certificate CN={Cn(peer)} is not valid before {peer.NotBefore.ToUniversalTime():u}";
        }

        return now > peer.NotAfter.ToUniversalTime() ? $"certificate CN={Cn(peer)} expired on {peer.NotAfter.ToUniversalTime():u}" : null;
    }

    /// <summary>
    /// TLS for calls to a peer that must be <paramref name="expectedRole"/> (and, when given, named
    /// <paramref name="expectedName"/>). The peer is identified by its certificate, not by the address
    /// dialled: agents are reached through NAT and advertised addresses. <paramref name="refused"/>
    /// hears why a server was refused (the exception only says "rejected by callback").
    /// </summary>
    public SslClientAuthenticationOptions ClientOptions(string expectedRole, string? expectedName = null, Action<string>? refused = null) => new()
    {
        ClientCertificates = Certificate is null ? null : [Certificate],
        // Always ours, whatever CA names the server lists: a server we don't share a CA with then
        // says why it refuses us, instead of us silently sending no certificate.
        LocalCertificateSelectionCallback = Certificate is null ? null : (_, _, _, _, _) => Certificate,
        EnabledSslProtocols = SslProtocols.Tls12 | SslProtocols.Tls13,
        RemoteCertificateValidationCallback = (_, certificate, _, _) =>
        {
            if (certificate is not X509Certificate2 server)
            {
                refused?.Invoke("the server sent no certificate");
                return false;
            }

            var check = Verify(server);
            var why = check.Identity switch
            {
                null => check.Error,
                { } id when !string.Equals(id.Role, expectedRole, StringComparison.Ordinal) =>
                    $"the server is {id.Name} with role {id.Role}, not a {expectedRole}",
                { } id when expectedName is not null && !string.Equals(id.Name, expectedName, StringComparison.Ordinal) =>
                    $"the server is {id.Name}, not {expectedName}",
                _ => null,
            };
            if (why is not null)
            {
                refused?.Invoke(why);
            }

            return why is null;
        },
    };

    public void Dispose()
    {
        Authority.Dispose();
        Certificate?.Dispose();
    }

    private static PeerIdentity? IdentityOf(X509Certificate2 certificate)
    {
        var name = Cn(certificate);
        var role = certificate.SubjectName.EnumerateRelativeDistinguishedNames()
            .Where(rdn => rdn.GetSingleElementType().Value == OrganizationalUnitOid)
            .Select(rdn => rdn.GetSingleElementValue())
            .FirstOrDefault(ou => ou is not null && PeerRoles.Known.Contains(ou));
        return name.Length > 0 && role is not null ? new PeerIdentity(name, role, "certificate") : null;
    }

    private static string Cn(X509Certificate2 certificate) => certificate.GetNameInfo(X509NameType.SimpleName, forIssuer: false);
}

/// <summary>The outcome of verifying a peer certificate: an identity, or the reason it was refused.</summary>
public sealed record CertificateCheck(PeerIdentity? Identity, string Error)
{
    public static CertificateCheck Accepted(PeerIdentity identity) => new(identity, string.Empty);

    public static CertificateCheck Refused(string error) => new(null, error);
}
