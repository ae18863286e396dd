using Google.Protobuf;

namespace SharedLvm.Grpc.Security;

/// <summary>
/// Sees every call before its handler runs and after it ended (grpc interceptors' place). Refusing
/// is throwing an RpcException from <see cref="AdmitAsync"/>: the handler then never runs, so a
/// refused call changes nothing. Optional: a server without one in DI admits every call.
/// </summary>
public interface IServerCallGate
{
    ValueTask AdmitAsync(ServerCallContext context, IMessage request);

    void Completed(ServerCallContext context, IMessage? request, Status status);
}
