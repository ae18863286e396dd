using System.Globalization;
using Google.Protobuf.WellKnownTypes;
using Grpc.Core;
using SharedLvm.Tests.Interop;

namespace SharedLvm.Tests.Support;

/// <summary>The test service of Protos/interop.proto, served by the daemons' own server configuration.</summary>
public sealed class EchoService : Echo.EchoBase
{
    private int _cancelledCalls;
    private int _startedSleeps;

    public int CancelledCalls => Volatile.Read(ref _cancelledCalls);

    public int StartedSleeps => Volatile.Read(ref _startedSleeps);

    public string? LastRequestId { get; private set; }

    public override Task<BytesValue> Unary(BytesValue request, ServerCallContext context)
    {
        LastRequestId = context.RequestHeaders.GetValue("x-request-id");
        if (context.RequestHeaders.GetValue("x-echo-header") is { } echoed)
        {
            context.ResponseTrailers.Add("x-echoed", echoed);
        }

        return Task.FromResult(request);
    }

    public override async Task<UInt32Value> Sleep(UInt32Value request, ServerCallContext context)
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

    public override Task<StringValue> Fail(StringValue request, ServerCallContext context)
    {
        var parts = request.Value.Split(':', 2);
        throw new RpcException(new Status((StatusCode)int.Parse(parts[0], CultureInfo.InvariantCulture), parts[1]));
    }

    public override async Task Count(UInt32Value request, IServerStreamWriter<UInt32Value> responseStream, ServerCallContext context)
    {
        for (uint i = 1; i <= request.Value; i++)
        {
            await responseStream.WriteAsync(new UInt32Value { Value = i }, context.CancellationToken);
        }
    }
}
