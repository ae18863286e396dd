using System.Security.Authentication;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Server.Kestrel.Core;
using Microsoft.AspNetCore.Server.Kestrel.Https;
using SharedLvm.Grpc.Security;

namespace SharedLvm.Hosting.Security;

/// <summary>Kestrel HTTPS for a daemon's gRPC listener: HTTP/2 over TLS 1.2+, client certificates asked for.</summary>
public static class KestrelTls
{
    public static void Use(ListenOptions listen, ClusterTls tls) => listen.UseHttps(new HttpsConnectionAdapterOptions
    {
        ServerCertificate = tls.Certificate ?? throw new InvalidOperationException("a TLS listener needs a certificate"),
        SslProtocols = SslProtocols.Tls12 | SslProtocols.Tls13,
        // Asked for, not required at the handshake, and accepted there whatever it is: the call gate
        // checks it against the cluster CA, so a refusal is a gRPC status naming the reason
        // (UNAUTHENTICATED: expired on ...) instead of a TLS alert the operator must decode.
        ClientCertificateMode = ClientCertificateMode.AllowCertificate,
        ClientCertificateValidation = (_, _, _) => true,
    });
}
