using Grpc.Net.Client;
using System.Diagnostics;
using System.Net.Security;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using SharedLvm.Grpc;
using SharedLvm.Grpc.Security;

namespace SharedLvm.Tests.Support;

/// <summary>
/// A cluster PKI made by the real scripts/pki (openssl) in a temp directory, plus what scripts/pki
/// refuses to make: an expired certificate, signed by the same CA with .NET.
/// </summary>
internal sealed class TestPki : IDisposable
{
    private TestPki(string directory) => Directory = directory;

    public string Directory { get; }

    public string Ca => Path.Combine(Directory, "ca.crt");

    public string Tokens => Path.Combine(Directory, "tokens");

    public DateTimeOffset CaNotBefore
    {
        get
        {
            using var ca = X509Certificate2.CreateFromPem(File.ReadAllText(Ca));
            return new DateTimeOffset(ca.NotBefore.ToUniversalTime(), TimeSpan.Zero);
        }
    }

    public static TestPki Create(params string[][] issues)
    {
        var pki = new TestPki(System.IO.Directory.CreateTempSubdirectory("slvm-pki-").FullName);
        pki.Run("ca");
        foreach (var issue in issues)
        {
            pki.Run(issue);
        }

        return pki;
    }

    /// <summary>scripts/pki VERB ARGS in this directory; its stdout (a token for "token").</summary>
    public string Run(params string[] arguments)
    {
        var info = new ProcessStartInfo("bash") { RedirectStandardOutput = true, RedirectStandardError = true };
        foreach (var argument in (string[])[Repo.PathOf("scripts", "pki"), "--dir", Directory, .. arguments])
        {
            info.ArgumentList.Add(argument);
        }

        using var process = Process.Start(info)!;
        var stdout = process.StandardOutput.ReadToEndAsync();
        var stderr = process.StandardError.ReadToEnd();
        process.WaitForExit();
        Assert.True(process.ExitCode == 0, $"scripts/pki {string.Join(' ', arguments)} failed: {stderr}");
        return stdout.Result.Trim();
    }

    public TlsFiles Files(string name) => TlsFiles.InPkiDirectory(Directory, name);

    public string[] ServerArgs(string name) => Files(name).ToServerArgs();

    /// <summary>A channel presenting <paramref name="name"/>'s certificate, verifying the server is a <paramref name="serverRole"/>.</summary>
    public GrpcChannel Channel(Uri address, string name, string serverRole = PeerRoles.Controller, string? serverName = null) =>
        new TransportSecurity(ClusterTls.Load(Files(name))).Dial(address.ToString(), serverRole, serverName);

    /// <summary>A channel presenting any certificate (or none), trusting any server: for certificates the server must refuse.</summary>
    public static GrpcChannel UncheckedChannel(Uri address, X509Certificate2? certificate) =>
        Channels.Open(address, new SslClientAuthenticationOptions
        {
            ClientCertificates = certificate is null ? null : [certificate],
            LocalCertificateSelectionCallback = certificate is null ? null : (_, _, _, _, _) => certificate,
            RemoteCertificateValidationCallback = (_, _, _, _) => true,
        });

    public X509Certificate2 Load(string name) => X509Certificate2.CreateFromPemFile(Files(name).CertificateFile, Files(name).KeyFile);

    /// <summary>A certificate of this CA for <paramref name="name"/> in <paramref name="role"/> valid in [from, to).</summary>
    public X509Certificate2 Issue(string name, string role, DateTimeOffset from, DateTimeOffset to)
    {
        using var caKey = ECDsa.Create();
        caKey.ImportFromPem(File.ReadAllText(Path.Combine(Directory, "ca.key")));
        using var caPublic = X509Certificate2.CreateFromPem(File.ReadAllText(Ca));
        using var ca = caPublic.CopyWithPrivateKey(caKey);
        var key = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        var request = new CertificateRequest($"CN={name}, OU={role}, O=SharedLvm", key, HashAlgorithmName.SHA256);
        request.CertificateExtensions.Add(new X509BasicConstraintsExtension(false, false, 0, true));
        request.CertificateExtensions.Add(new X509EnhancedKeyUsageExtension([new Oid("1.3.6.1.5.5.7.3.2")], false));
        using var issued = request.Create(ca, from, to, RandomNumberGenerator.GetBytes(12));
        return issued.CopyWithPrivateKey(key);
    }

    public void Dispose() => System.IO.Directory.Delete(Directory, recursive: true);
}
