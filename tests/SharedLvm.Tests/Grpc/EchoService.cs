using System.Globalization;
using Google.Protobuf.WellKnownTypes;
using SharedLvm.Grpc;

namespace SharedLvm.Tests.Grpc;

/// <summary>The test service of protos interop.proto, implemented on our server.</summary>
public sealed class EchoService
{
    private int _cancelledCalls;
    private int _startedSleeps;

    public static Google.Protobuf.Reflection.ServiceDescriptor Descriptor => Interop.InteropReflection.Descriptor.Services[0];

    public int CancelledCalls => Volatile.Read(ref _cancelledCalls);

    public int StartedSleeps => Volatile.Read(ref _startedSleeps);

    public string? LastRequestId { get; private set; }

    public Task<BytesValue> Unary(BytesValue request, ServerCallContext context)
    {
        LastRequestId = context.GetRequestHeader("x-request-id");
        if (context.GetRequestHeader("x-echo-header") is { } echoed)
        {
            context.ResponseTrailers["x-echoed"] = echoed;
        }

        return Task.FromResult(request);
    }

    public async Task<UInt32Value> Sleep(UInt32Value request, ServerCallContext context)
    {
        Interlocked.Increment(ref _startedSleeps);
        try
        {
            await Task.Delay(TimeSpan.FromMilliseconds(request.Value), context.CancellationToken);
        }
        catch (OperationCanceledException)
        {
            Interlocked.Increment(ref _cancelledCalls);
            throw;
        }

        return request;
    }

    public Task<StringValue> Fail(StringValue request, ServerCallContext context)
    {
        var parts = request.Value.Split(':', 2);
        throw new RpcException((SharedLvm.Grpc.StatusCode)int.Parse(parts[0], CultureInfo.InvariantCulture), parts[1]);
    }

    public async Task Count(UInt32Value request, IServerStreamWriter<UInt32Value> responseStream, ServerCallContext context)
    {
        for (uint i = 1; i <= request.Value; i++)
        {
            await responseStream.WriteAsync(new UInt32Value { Value = i }, context.CancellationToken);
        }
    }
}
