using System.Diagnostics;
using System.Net;
using System.Net.Http.Headers;
using Google.Protobuf;
using Google.Protobuf.WellKnownTypes;
using Grpc.Core;
using Grpc.Health.V1;
using Grpc.Net.Client;
using Grpc.Reflection.V1Alpha;
using Microsoft.Extensions.DependencyInjection;
using SharedLvm.Grpc;
using SharedLvm.Tests.Interop;
using SharedLvm.Tests.Support;

namespace SharedLvm.Tests.Hosting;

/// <summary>
/// The daemons' gRPC server configuration (GrpcServer: Grpc.AspNetCore with our limits, call gate,
/// deadline cap, safe parsing, health, reflection) against our client channel over real HTTP/2.
/// </summary>
public sealed class GrpcServerTests : IAsyncLifetime
{
    private GrpcTestServer _server = null!;
    private GrpcChannel _channel = null!;
    private Echo.EchoClient _echo = null!;

    public async ValueTask InitializeAsync()
    {
        _server = await GrpcTestServer.StartAsync<EchoService>(GrpcTestServer.OpenPolicy(SharedLvm.Tests.Interop.Echo.Descriptor), maxUnaryCall: TimeSpan.FromSeconds(3));
        _channel = Channels.Open(_server.Address, null);
        _echo = new Echo.EchoClient(_channel);
    }

    public async ValueTask DisposeAsync()
    {
        _channel.Dispose();
        await _server.DisposeAsync();
    }

    private EchoService Service => _server.Services.GetRequiredService<EchoService>();

    [Fact]
    public async Task Unary_call_carries_message_and_metadata_both_ways()
    {
        var call = _echo.UnaryAsync(new BytesValue { Value = ByteString.CopyFromUtf8("hello") }, new Metadata { { "x-request-id", "req-7" }, { "x-echo-header", "e" } });
        var reply = await call;
        Assert.Equal("hello", reply.Value.ToStringUtf8());
        Assert.Equal("req-7", Service.LastRequestId);
        Assert.Equal("e", call.GetTrailers().GetValue("x-echoed"));
    }

    [Fact]
    public async Task Server_streaming_delivers_every_message_in_order()
    {
        using var call = _echo.Count(new UInt32Value { Value = 50 });
        var values = new List<uint>();
        await foreach (var item in call.ResponseStream.ReadAllAsync())
        {
            values.Add(item.Value);
        }

        Assert.Equal(Enumerable.Range(1, 50).Select(i => (uint)i), values);
    }

    [Fact]
    public async Task Error_status_and_percent_encoded_message_reach_the_client()
    {
        var e = await Assert.ThrowsAsync<RpcException>(async () => await _echo.FailAsync(new StringValue { Value = "9:volume v1 is attached to node-a (ü %)" }));
        Assert.Equal(StatusCode.FailedPrecondition, e.StatusCode);
        Assert.Equal("volume v1 is attached to node-a (ü %)", e.Status.Detail);
    }

    [Fact]
    public async Task Status_details_echoed_to_a_client_are_bounded()
    {
        var e = await Assert.ThrowsAsync<RpcException>(async () => await _echo.FailAsync(new StringValue { Value = "3:" + new string('x', 70_000) }));
        Assert.Equal(StatusCode.InvalidArgument, e.StatusCode);
        Assert.True(e.Status.Detail.Length <= SharedLvm.Hosting.Security.CallGate.MaxDetailLength + 3, $"{e.Status.Detail.Length} characters");
    }

    [Fact]
    public async Task Deadline_is_enforced_and_the_server_handler_is_cancelled()
    {
        // Long enough for the request to reach the handler even on a loaded machine.
        var call = _echo.SleepAsync(new UInt32Value { Value = 60_000 }, deadline: DateTime.UtcNow.AddSeconds(2));
        await Eventually.TrueAsync(() => Service.StartedSleeps == 1, "the handler started");
        var e = await Assert.ThrowsAsync<RpcException>(async () => await call);
        Assert.Equal(StatusCode.DeadlineExceeded, e.StatusCode);
        await Eventually.TrueAsync(() => Service.CancelledCalls == 1, "server handler saw the cancellation");
    }

    [Fact]
    public async Task A_unary_call_without_a_deadline_is_ended_by_the_servers_cap()
    {
        var stopwatch = Stopwatch.StartNew();
        var e = await Assert.ThrowsAsync<RpcException>(async () => await _echo.SleepAsync(new UInt32Value { Value = 60_000 }));
        Assert.Equal(StatusCode.DeadlineExceeded, e.StatusCode);
        Assert.Contains("ends unary calls after 3 s", e.Status.Detail, StringComparison.Ordinal);
        Assert.True(stopwatch.Elapsed < TimeSpan.FromSeconds(30), $"took {stopwatch.Elapsed}");
    }

    [Theory]
    [InlineData("/sharedlvm.testing.Echo/Unary", "99999999H")]
    [InlineData("/sharedlvm.testing.Echo/Count", "99999999H")]
    [InlineData("/sharedlvm.testing.Echo/Count", "99999999S")]
    [InlineData("/sharedlvm.testing.Echo/Unary", "99999999M")]
    public async Task An_unrepresentable_deadline_is_treated_as_none_not_a_crash(string path, string timeout)
    {
        var status = await RawCallAsync(path, Frame(0, [0x08, 0x01]), ("grpc-timeout", timeout));
        Assert.Equal(((int)HttpStatusCode.OK, StatusCode.OK), (status.Http, status.Grpc));
    }

    [Fact]
    public async Task Client_cancellation_reports_cancelled_and_reaches_the_server()
    {
        using var cts = new CancellationTokenSource();
        var call = _echo.SleepAsync(new UInt32Value { Value = 60_000 }, cancellationToken: cts.Token);
        await Eventually.TrueAsync(() => Service.StartedSleeps == 1, "the handler started");
        await cts.CancelAsync();
        var e = await Assert.ThrowsAsync<RpcException>(async () => await call);
        Assert.Equal(StatusCode.Cancelled, e.StatusCode);
        await Eventually.TrueAsync(() => Service.CancelledCalls == 1, "server handler saw the cancellation");
    }

    [Fact]
    public async Task Messages_up_to_the_limit_pass_and_larger_ones_are_resource_exhausted()
    {
        var big = ByteString.CopyFrom(new byte[3 * 1024 * 1024]);
        var reply = await _echo.UnaryAsync(new BytesValue { Value = big });
        Assert.Equal(big.Length, reply.Value.Length);

        using var bigChannel = GrpcChannel.ForAddress(_server.Address, new GrpcChannelOptions { MaxSendMessageSize = 16 * 1024 * 1024 });
        var tooBig = new BytesValue { Value = ByteString.CopyFrom(new byte[5 * 1024 * 1024]) };
        var e = await Assert.ThrowsAsync<RpcException>(async () => await new Echo.EchoClient(bigChannel).UnaryAsync(tooBig));
        Assert.Equal(StatusCode.ResourceExhausted, e.StatusCode);
    }

    [Fact]
    public async Task Unknown_method_is_unimplemented()
    {
        var status = await RawCallAsync("/sharedlvm.testing.Echo/Nope", Frame(0, [0x0a, 0x00]));
        Assert.Equal(((int)HttpStatusCode.OK, StatusCode.Unimplemented), (status.Http, status.Grpc));
    }

    [Theory]
    [InlineData(new byte[] { 0, 0, 0, 0, 16, 1, 2, 3 }, "truncated frame")]
    [InlineData(new byte[] { 1, 0, 0, 0, 1, 0xff }, "compressed without grpc-encoding")]
    [InlineData(new byte[] { 0, 0, 0, 0, 2, 0xff, 0xff }, "undecodable protobuf")]
    [InlineData(new byte[] { 0, 0, 0, 0, 0, 0, 0, 0, 0, 0 }, "two messages to a unary method")]
    public async Task Malformed_requests_get_internal_never_a_crash(byte[] body, string because)
    {
        var status = await RawCallAsync("/sharedlvm.testing.Echo/Unary", body);
        Assert.True(status.Grpc == StatusCode.Internal, $"{because}: got {status.Grpc}");

        // The server is still fine afterwards.
        var reply = await _echo.UnaryAsync(new BytesValue { Value = ByteString.CopyFromUtf8("ok") });
        Assert.Equal("ok", reply.Value.ToStringUtf8());
    }

    [Fact]
    public async Task Unsupported_compression_is_unimplemented()
    {
        var status = await RawCallAsync("/sharedlvm.testing.Echo/Unary", Frame(1, [0x01]), ("grpc-encoding", "snappy"));
        Assert.Equal(StatusCode.Unimplemented, status.Grpc);
    }

    [Fact]
    public async Task Non_grpc_content_type_is_refused_at_the_http_level()
    {
        using var client = new HttpClient();
        using var request = new HttpRequestMessage(HttpMethod.Post, new Uri(_server.Address, "/sharedlvm.testing.Echo/Unary"))
        {
            Version = HttpVersion.Version20,
            VersionPolicy = HttpVersionPolicy.RequestVersionExact,
            Content = new StringContent("{}", new MediaTypeHeaderValue("application/json")),
        };
        using var response = await client.SendAsync(request);
        Assert.Equal(HttpStatusCode.UnsupportedMediaType, response.StatusCode);
    }

    [Fact]
    public async Task Health_check_reports_serving_and_unknown_services_not_found_without_echoing_them()
    {
        var health = new Health.HealthClient(_channel);
        var reply = await health.CheckAsync(new HealthCheckRequest());
        Assert.Equal(HealthCheckResponse.Types.ServingStatus.Serving, reply.Status);
        var e = await Assert.ThrowsAsync<RpcException>(async () => await health.CheckAsync(new HealthCheckRequest { Service = new string('s', 70_000) }));
        Assert.Equal(StatusCode.NotFound, e.StatusCode);
        Assert.True(e.Status.Detail.Length < 2048, $"{e.Status.Detail.Length} characters echoed");
    }

    [Fact]
    public async Task Reflection_lists_the_services()
    {
        var reflection = new ServerReflection.ServerReflectionClient(_channel);
        using var call = reflection.ServerReflectionInfo();
        await call.RequestStream.WriteAsync(new ServerReflectionRequest { ListServices = string.Empty });
        await call.RequestStream.CompleteAsync();
        Assert.True(await call.ResponseStream.MoveNext());
        var services = call.ResponseStream.Current.ListServicesResponse.Service.Select(s => s.Name).ToArray();
        Assert.Contains("sharedlvm.testing.Echo", services);
        Assert.Contains("grpc.health.v1.Health", services);
    }

    [Fact]
    public async Task Unreachable_server_is_unavailable()
    {
        using var dead = Channels.Open(new Uri("http://127.0.0.1:1"), null);
        var e = await Assert.ThrowsAsync<RpcException>(async () => await new Echo.EchoClient(dead).UnaryAsync(new BytesValue()));
        Assert.Equal(StatusCode.Unavailable, e.StatusCode);
    }

    private static byte[] Frame(byte flag, byte[] payload) =>
        [flag, 0, 0, 0, (byte)payload.Length, .. payload];

    private async Task<(int Http, StatusCode? Grpc)> RawCallAsync(string path, byte[] body, params (string Key, string Value)[] headers)
    {
        using var client = new HttpClient();
        var content = new ByteArrayContent(body);
        content.Headers.ContentType = new MediaTypeHeaderValue("application/grpc");
        using var request = new HttpRequestMessage(HttpMethod.Post, new Uri(_server.Address, path))
        {
            Version = HttpVersion.Version20,
            VersionPolicy = HttpVersionPolicy.RequestVersionExact,
            Content = content,
        };
        request.Headers.TryAddWithoutValidation("te", "trailers");
        foreach (var (key, value) in headers)
        {
            request.Headers.TryAddWithoutValidation(key, value);
        }

        using var response = await client.SendAsync(request);
        await response.Content.ReadAsByteArrayAsync();
        var raw = response.Headers.TryGetValues("grpc-status", out var h) ? h.First()
            : response.TrailingHeaders.TryGetValues("grpc-status", out var t) ? t.First() : null;
        return ((int)response.StatusCode, raw is null ? null : (StatusCode)int.Parse(raw, System.Globalization.CultureInfo.InvariantCulture));
    }
}
