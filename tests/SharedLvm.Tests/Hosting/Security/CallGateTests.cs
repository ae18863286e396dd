using System.Text.Json;
using Grpc.Core;
using Microsoft.Extensions.Logging.Abstractions;
using SharedLvm.Hosting.Security;
using SharedLvm.Tests.Support;

namespace SharedLvm.Tests.Hosting.Security;

/// <summary>
/// The call gate on its own (plaintext: nobody authenticated, the access rules still apply): what
/// it refuses, what it caps, what it turns into statuses, and what it audits.
/// </summary>
public sealed class CallGateTests : IDisposable
{
    private const string Read = "/test.Service/Read";
    private const string Write = "/test.Service/Write";
    private readonly string _directory = Directory.CreateTempSubdirectory("slvm-gate-").FullName;
    private readonly AuditLog _audit;
    private readonly CallGate _gate;

    public CallGateTests()
    {
        _audit = new AuditLog(Path.Combine(_directory, "audit.log"), TimeProvider.System, NullLogger.Instance);
        var policy = new AccessPolicy().Allow(Read, mutates: false, "reader").Allow(Write, mutates: true, "admin");
        _gate = new CallGate(null, null, policy, _audit, new MutationLimits(), TimeSpan.FromMilliseconds(500), NullLogger.Instance);
    }

    public void Dispose()
    {
        _gate.Dispose();
        _audit.Dispose();
        Directory.Delete(_directory, recursive: true);
    }

    [Fact]
    public async Task A_method_without_a_rule_is_refused_and_the_refusal_audited()
    {
        var handlerRan = false;
        var e = await Assert.ThrowsAsync<RpcException>(() => _gate.UnaryServerHandler<string, string>("x", new FakeCallContext("/test.Service/Unknown"), (_, _) =>
        {
            handlerRan = true;
            return Task.FromResult("ran");
        }));
        Assert.Equal(StatusCode.PermissionDenied, e.StatusCode);
        Assert.Contains("has no access rule", e.Status.Detail, StringComparison.Ordinal);
        Assert.False(handlerRan);
        Assert.Equal(("/test.Service/Unknown", "PERMISSION_DENIED"), Audited().Single());
    }

    [Fact]
    public async Task Mutations_are_audited_reads_are_not()
    {
        Assert.Equal("ok", await _gate.UnaryServerHandler<string, string>("x", new FakeCallContext(Read), (_, _) => Task.FromResult("ok")));
        Assert.Equal("ok", await _gate.UnaryServerHandler<string, string>("x", new FakeCallContext(Write), (_, _) => Task.FromResult("ok")));
        Assert.Equal((Write, "OK"), Audited().Single());
    }

    [Fact]
    public async Task An_unexpected_exception_is_internal_and_leaks_nothing()
    {
        var e = await Assert.ThrowsAsync<RpcException>(() => _gate.UnaryServerHandler<string, string>("x", new FakeCallContext(Write),
            (_, _) => throw new InvalidOperationException("secret internals")));
        Assert.Equal(StatusCode.Internal, e.StatusCode);
        Assert.DoesNotContain("secret", e.Status.Detail, StringComparison.Ordinal);
        Assert.Equal((Write, "INTERNAL"), Audited().Single());
    }

    [Fact]
    public async Task A_unary_call_is_capped_whatever_its_deadline()
    {
        var e = await Assert.ThrowsAsync<RpcException>(() => _gate.UnaryServerHandler<string, string>("x", new FakeCallContext(Read), async (_, context) =>
        {
            await Task.Delay(Timeout.Infinite, context.CancellationToken);
            return "never";
        }));
        Assert.Equal(StatusCode.DeadlineExceeded, e.StatusCode);
    }

    [Fact]
    public async Task A_status_detail_is_bounded_before_it_reaches_the_client()
    {
        var e = await Assert.ThrowsAsync<RpcException>(() => _gate.UnaryServerHandler<string, string>("x", new FakeCallContext(Read),
            (_, _) => throw new RpcException(new Status(StatusCode.NotFound, new string('n', 70_000)))));
        Assert.Equal(StatusCode.NotFound, e.StatusCode);
        Assert.True(e.Status.Detail.Length <= CallGate.MaxDetailLength + 3);
    }

    [Fact]
    public async Task A_client_going_away_is_cancelled_not_an_error()
    {
        using var cts = new CancellationTokenSource();
        await cts.CancelAsync();
        var e = await Assert.ThrowsAsync<RpcException>(() => _gate.UnaryServerHandler<string, string>("x", new FakeCallContext(Read, cts.Token),
            (_, context) => throw new OperationCanceledException(context.CancellationToken)));
        Assert.Equal(StatusCode.Cancelled, e.StatusCode);
    }

    [Fact]
    public async Task Streaming_calls_both_ways_pass_the_gate_too()
    {
        var e = await Assert.ThrowsAsync<RpcException>(() => _gate.DuplexStreamingServerHandler<string, string>(null!, null!, new FakeCallContext("/grpc.reflection.v1.ServerReflection/ServerReflectionInfo"),
            (_, _, _) => Task.CompletedTask));
        Assert.Equal(StatusCode.PermissionDenied, e.StatusCode);
        var clientStreaming = await Assert.ThrowsAsync<RpcException>(() => _gate.ClientStreamingServerHandler<string, string>(null!, new FakeCallContext("/x.Y/Upload"),
            (_, _) => Task.FromResult("ran")));
        Assert.Equal(StatusCode.PermissionDenied, clientStreaming.StatusCode);
    }

    private IEnumerable<(string Method, string Code)> Audited()
    {
        _audit.Dispose();
        return File.ReadAllLines(Path.Combine(_directory, "audit.log")).Select(l =>
        {
            using var json = JsonDocument.Parse(l);
            return (json.RootElement.GetProperty("method").GetString()!, json.RootElement.GetProperty("code").GetString()!);
        }).ToArray();
    }
}
