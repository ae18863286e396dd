using Grpc.Core;
using Grpc.Core.Interceptors;

namespace SharedLvm.Hosting;

/// <summary>
/// Turns a daemon's typed exceptions (a refused volume operation, a failed lvm command, a timed-out
/// multipathd) into the gRPC status its callers see. Each daemon registers one; services and domain
/// code throw their own exceptions and never build statuses. Unmapped exceptions pass on to the
/// call gate, which answers INTERNAL and logs them as the bugs they are.
/// </summary>
public interface IStatusMapper
{
    /// <summary>The status for <paramref name="exception"/>, or null when this mapper does not know it.</summary>
    Status? Map(Exception exception);
}

/// <summary>The wire boundary: the only place where exceptions become statuses.</summary>
public sealed class StatusMappingInterceptor(IStatusMapper mapper) : Interceptor
{
    public override async Task<TResponse> UnaryServerHandler<TRequest, TResponse>(TRequest request, ServerCallContext context, UnaryServerMethod<TRequest, TResponse> continuation)
    {
        try
        {
            return await continuation(request, context).ConfigureAwait(false);
        }
        catch (Exception e) when (e is not RpcException && mapper.Map(e) is { } status)
        {
            throw new RpcException(status);
        }
    }

    public override async Task ServerStreamingServerHandler<TRequest, TResponse>(TRequest request, IServerStreamWriter<TResponse> responseStream, ServerCallContext context, ServerStreamingServerMethod<TRequest, TResponse> continuation)
    {
        try
        {
            await continuation(request, responseStream, context).ConfigureAwait(false);
        }
        catch (Exception e) when (e is not RpcException && mapper.Map(e) is { } status)
        {
            throw new RpcException(status);
        }
    }
}
