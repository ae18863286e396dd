using Microsoft.AspNetCore.Http;
using SharedLvm.Grpc.Security;

namespace SharedLvm.Grpc;

/// <summary>What a service handler knows about the call besides its request message.</summary>
public sealed class ServerCallContext
{
    private readonly Dictionary<string, string> _responseTrailers = new(StringComparer.OrdinalIgnoreCase);

    internal ServerCallContext(HttpContext httpContext, GrpcMethod method, DateTimeOffset? deadline, CancellationToken cancellationToken)
    {
        HttpContext = httpContext;
        Method = method;
        Deadline = deadline;
        CancellationToken = cancellationToken;
    }

    /// <summary>The underlying HTTP/2 request: TLS client certificate, connection info.</summary>
    public HttpContext HttpContext { get; }

    public GrpcMethod Method { get; }

    /// <summary>The client's deadline (grpc-timeout), if it set one.</summary>
    public DateTimeOffset? Deadline { get; }

    /// <summary>Fires when the client cancels, the connection drops or the deadline passes.</summary>
    public CancellationToken CancellationToken { get; }

    /// <summary>Who is calling, once the server's <see cref="IServerCallGate"/> authenticated the call.</summary>
    public PeerIdentity? Identity { get; set; }

    /// <summary>For logs: "name@peer" once authenticated, else the peer address.</summary>
    public string Caller => Identity is { Role.Length: > 0 } who ? $"{who.Name}@{Peer}" : Peer;

    public string Peer => HttpContext.Connection.RemoteIpAddress is { } ip
        ? $"{ip}:{HttpContext.Connection.RemotePort}"
        : "unknown";

    /// <summary>A request metadata value (header), or null. Keys are lower case on HTTP/2.</summary>
    public string? GetRequestHeader(string key) =>
        HttpContext.Request.Headers.TryGetValue(key, out var value) ? value.ToString() : null;

    /// <summary>Custom metadata sent in the trailers with the status.</summary>
    public IDictionary<string, string> ResponseTrailers => _responseTrailers;
}

/// <summary>Writes the messages of a server-streaming response.</summary>
public interface IServerStreamWriter<in T>
{
    Task WriteAsync(T message, CancellationToken cancellationToken = default);
}
