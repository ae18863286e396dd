using System.Net.Security;
using Grpc.Net.Client;

namespace SharedLvm.Grpc.Security;

/// <summary>
/// How this process talks gRPC: over mutual TLS with the cluster's certificates, or (--insecure, for
/// development) plaintext. Dialing names the identity expected on the other end, so an agent only
/// obeys the controller and the controller only trusts node-a's certificate to be node-a.
/// </summary>
public sealed class TransportSecurity : IDisposable
{
    public TransportSecurity(ClusterTls? tls) => Tls = tls;

    /// <summary>Null with --insecure.</summary>
    public ClusterTls? Tls { get; }

    public static TransportSecurity Plaintext { get; } = new(null);

    /// <summary>
    /// Loads the daemon's TLS files, or returns plaintext when <paramref name="insecure"/> says so.
    /// Missing files fail start-up with a message that names them: TLS is the default.
    /// </summary>
    public static TransportSecurity Load(bool insecure, TlsFiles files) =>
        insecure ? Plaintext : new TransportSecurity(ClusterTls.Load(files));

    /// <summary>
    /// The URL to dial for <paramref name="address"/> (host:port gets https://, or http:// when
    /// plaintext). A plaintext URL while TLS is on is an ArgumentException: call this at start-up
    /// to fail there rather than in the first connection attempt.
    /// </summary>
    public Uri Resolve(string address)
    {
        var url = new Uri(address.Contains("://", StringComparison.Ordinal) ? address : (Tls is null ? "http://" : "https://") + address);
        if (Tls is not null && url.Scheme != Uri.UriSchemeHttps)
        {
            throw new ArgumentException($"'{address}' is plaintext but TLS is on: give host:port or https:// (or --insecure, for development only)");
        }

        return url;
    }

    /// <summary>A channel to <paramref name="address"/> (host:port, or a URL) whose server must be <paramref name="expectedRole"/>.</summary>
    public GrpcChannel Dial(string address, string expectedRole, string? expectedName = null, Action<string>? refused = null) =>
        Channels.Open(Resolve(address), Tls?.ClientOptions(expectedRole, expectedName, refused));

    public void Dispose() => Tls?.Dispose();
}
