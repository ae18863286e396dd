using Grpc.Core;
using Grpc.Core.Interceptors;
using SharedLvm.Contracts.Conventions;
using SharedLvm.Controller.Lease;

namespace SharedLvm.Controller.Api;

/// <summary>
/// A standby (or a controller that just lost its lease) answers every SharedLvm call, agents' included,
/// with UNAVAILABLE and the active controller's address in the <see cref="ActiveController.Trailer"/>
/// trailer, which slvm and the agents follow; so does the active controller until its pools are
/// loaded (<see cref="ServingState"/>). Health and reflection stay open. All four call kinds: a gate
/// that overrides only some is walked past by the others.
/// </summary>
public sealed class StandbyGate(IWriterLease lease, ServingState serving) : Interceptor
{
    private const string GatedPrefix = "/sharedlvm.";
    private static readonly string StatusMethod = SharedLvm.Hosting.Security.MethodPaths.Of(SharedLvm.Contracts.V1.Controller.Descriptor, "GetControllerStatus");

    public override Task<TResponse> UnaryServerHandler<TRequest, TResponse>(TRequest request, ServerCallContext context, UnaryServerMethod<TRequest, TResponse> continuation)
    {
        Check(context);
        return continuation(request, context);
    }

    public override Task ServerStreamingServerHandler<TRequest, TResponse>(TRequest request, IServerStreamWriter<TResponse> responseStream, ServerCallContext context, ServerStreamingServerMethod<TRequest, TResponse> continuation)
    {
        Check(context);
        return continuation(request, responseStream, context);
    }

    public override Task<TResponse> ClientStreamingServerHandler<TRequest, TResponse>(IAsyncStreamReader<TRequest> requestStream, ServerCallContext context, ClientStreamingServerMethod<TRequest, TResponse> continuation)
    {
        Check(context);
        return continuation(requestStream, context);
    }

    public override Task DuplexStreamingServerHandler<TRequest, TResponse>(IAsyncStreamReader<TRequest> requestStream, IServerStreamWriter<TResponse> responseStream, ServerCallContext context, DuplexStreamingServerMethod<TRequest, TResponse> continuation)
    {
        Check(context);
        return continuation(requestStream, responseStream, context);
    }

    private void Check(ServerCallContext context)
    {
        if (!context.Method.StartsWith(GatedPrefix, StringComparison.Ordinal) || string.Equals(context.Method, StatusMethod, StringComparison.Ordinal)
            || (lease.IsActive && serving.IsServing))
        {
            return;
        }

        var active = lease.ActiveAddress;
        var trailers = new Metadata();
        if (!string.IsNullOrEmpty(active))
        {
            trailers.Add(ActiveController.Trailer, active);
        }

        if (lease.IsActive)
        {
            // Naming itself: an agent that is told where the active controller is retries it within
            // a second or two, where an unexplained UNAVAILABLE sent it round its list with its backoff
            // doubling (S9z: registered 17 s after this controller started serving, after a 25 s load).
            throw new RpcException(new Status(StatusCode.Unavailable,
                "This controller has just become the active one (it holds the writer lease) and is loading its pools; retry in a moment."), trailers);
        }

        throw new RpcException(new Status(StatusCode.Unavailable,
            active is null
                ? "This controller is a standby: it does not hold the writer lease, and the active controller is not known yet."
                : $"This controller is a standby; the active controller is {active}."), trailers);
    }
}
