using Grpc.Core;

namespace SharedLvm.Hosting;

/// <summary>
/// The call's context with an upper bound on its deadline: cancelled at whichever comes first, the
/// client's deadline or the server's cap. Everything else is the original context's.
/// </summary>
internal sealed class CappedCallContext : ServerCallContext, IDisposable
{
    private readonly ServerCallContext _inner;
    private readonly CancellationTokenSource _cap;
    private readonly CancellationTokenSource _linked;
    private readonly DateTime _deadline;

    public CappedCallContext(ServerCallContext inner, TimeSpan cap)
    {
        _inner = inner;
        // Handlers that ask for the HttpContext find it through UserState (grpc-dotnet's documented
        // fallback for contexts that replace its own).
        if (inner is not CappedCallContext && inner.GetType().Name == "HttpContextServerCallContext")
        {
            inner.UserState["__HttpContext"] = inner.GetHttpContext();
        }
        _cap = new CancellationTokenSource(cap);
        _linked = CancellationTokenSource.CreateLinkedTokenSource(inner.CancellationToken, _cap.Token);
        var capped = DateTime.UtcNow + cap;
        _deadline = inner.Deadline < capped ? inner.Deadline : capped;
    }

    /// <summary>True when the server's cap, not the client, ended the call.</summary>
    public bool CapReached => _cap.IsCancellationRequested && !_inner.CancellationToken.IsCancellationRequested;

    protected override string MethodCore => _inner.Method;

    protected override string HostCore => _inner.Host;

    protected override string PeerCore => _inner.Peer;

    protected override DateTime DeadlineCore => _deadline;

    protected override Metadata RequestHeadersCore => _inner.RequestHeaders;

    protected override CancellationToken CancellationTokenCore => _linked.Token;

    protected override Metadata ResponseTrailersCore => _inner.ResponseTrailers;

    protected override Status StatusCore
    {
        get => _inner.Status;
        set => _inner.Status = value;
    }

    protected override WriteOptions? WriteOptionsCore
    {
        get => _inner.WriteOptions;
        set => _inner.WriteOptions = value;
    }

    protected override AuthContext AuthContextCore => _inner.AuthContext;

    protected override IDictionary<object, object> UserStateCore => _inner.UserState;

    public void Dispose()
    {
        _linked.Dispose();
        _cap.Dispose();
    }

    protected override ContextPropagationToken CreatePropagationTokenCore(ContextPropagationOptions? options) =>
        throw new NotSupportedException("SharedLvm servers do not propagate contexts to outgoing calls.");

    protected override Task WriteResponseHeadersAsyncCore(Metadata responseHeaders) => _inner.WriteResponseHeadersAsync(responseHeaders);
}
