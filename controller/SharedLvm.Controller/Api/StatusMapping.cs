using SharedLvm.Grpc;
using SharedLvm.Os.Lvm;
using SharedLvm.Os.Processes;

namespace SharedLvm.Controller.Api;

/// <summary>The wire boundary: domain and OS exceptions become gRPC statuses here and nowhere else.</summary>
internal static class StatusMapping
{
    public static async Task<T> Guard<T>(Func<Task<T>> call)
    {
        try
        {
            return await call().ConfigureAwait(false);
        }
        catch (Exception e) when (ToRpc(e) is { } rpc)
        {
            throw rpc;
        }
    }

    public static RpcException? ToRpc(Exception e) => e switch
    {
        ControllerException c => new RpcException(new Status(Map(c.Kind), c.Message), c),
        LvmException l => new RpcException(new Status(Map(l.Kind), Describe(l)), l),
        ProcessTimeoutException t => new RpcException(new Status(StatusCode.Unavailable, $"{t.Message} Retry; the outcome is reconciled from the VG."), t),
        ProcessStartException s => new RpcException(new Status(StatusCode.Unavailable, s.Message), s),
        _ => null,
    };

    private static StatusCode Map(ControllerErrorKind kind) => kind switch
    {
        ControllerErrorKind.InvalidArgument => StatusCode.InvalidArgument,
        ControllerErrorKind.NotFound => StatusCode.NotFound,
        ControllerErrorKind.AlreadyExists => StatusCode.AlreadyExists,
        ControllerErrorKind.FailedPrecondition => StatusCode.FailedPrecondition,
        ControllerErrorKind.Aborted => StatusCode.Aborted,
        ControllerErrorKind.ResourceExhausted => StatusCode.ResourceExhausted,
        ControllerErrorKind.Unavailable => StatusCode.Unavailable,
        _ => StatusCode.Internal,
    };

    private static StatusCode Map(LvmErrorKind kind) => kind switch
    {
        LvmErrorKind.NotFound => StatusCode.NotFound,
        LvmErrorKind.AlreadyExists => StatusCode.AlreadyExists,
        LvmErrorKind.InsufficientSpace or LvmErrorKind.MetadataFull => StatusCode.ResourceExhausted,
        LvmErrorKind.NeedsDeviceMapper => StatusCode.FailedPrecondition,
        LvmErrorKind.InvalidArgument => StatusCode.InvalidArgument,
        _ => StatusCode.Internal,
    };

    private static string Describe(LvmException e) => e.Kind switch
    {
        LvmErrorKind.NeedsDeviceMapper => $"lvm {e.Command} needs the device-mapper kernel driver on the controller host: {LvmException.Summarize(e.StandardError)}",
        _ => $"lvm {e.Command} failed (exit {e.ExitCode}): {LvmException.Summarize(e.StandardError)}",
    };
}
