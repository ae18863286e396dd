using System.Net;
using System.Net.Http.Headers;
using Google.Protobuf;
using Google.Protobuf.WellKnownTypes;
using Microsoft.AspNetCore.Builder;
using Microsoft.Extensions.DependencyInjection;
using SharedLvm.Grpc;
using SharedLvm.Tests.Support;
using GrpcStatusCode = SharedLvm.Grpc.StatusCode;

namespace SharedLvm.Tests.Grpc;

/// <summary>Our client against our server over real HTTP/2 on loopback.</summary>
public sealed class GrpcWireTests : IAsyncLifetime
{
    private GrpcTestServer _server = null!;
    private GrpcChannel _channel = null!;
    private GrpcServiceClient _echo = null!;

    public async Task InitializeAsync()
    {
        _server = await GrpcTestServer.StartAsync(
            services => services.AddSingleton<EchoService>().AddSingleton<HealthService>(),
            app =>
            {
                app.MapGrpcService<EchoService>(EchoService.Descriptor);
                app.MapGrpcService<HealthService>(HealthService.Descriptor);
            });
        _channel = GrpcChannel.ForAddress(_server.Address);
        _echo = new GrpcServiceClient(_channel, EchoService.Descriptor);
    }

    public async Task DisposeAsync()
    {
        _channel.Dispose();
        await _server.DisposeAsync();
    }

    private EchoService Service => _server.Services.GetRequiredService<EchoService>();

    [Fact]
    public async Task Unary_call_carries_message_and_metadata_both_ways()
    {
        var reply = await _echo.CallAsync<BytesValue>(
            "Unary",
            new BytesValue { Value = ByteString.CopyFromUtf8("hello") },
            new CallOptions { Headers = new Dictionary<string, string> { ["x-request-id"] = "req-7" } });
        Assert.Equal("hello", reply.Value.ToStringUtf8());
        Assert.Equal("req-7", Service.LastRequestId);
    }

    [Fact]
    public async Task Server_streaming_delivers_every_message_in_order()
    {
        var values = new List<uint>();
        await foreach (var item in _echo.StreamAsync<UInt32Value>(new UInt32Value { Value = 50 }, methodName: "Count"))
        {
            values.Add(item.Value);
        }

        Assert.Equal(Enumerable.Range(1, 50).Select(i => (uint)i), values);
    }

    [Fact]
    public async Task Error_status_and_percent_encoded_message_reach_the_client()
    {
        var e = await Assert.ThrowsAsync<RpcException>(() =>
            _echo.CallAsync<StringValue>("Fail", new StringValue { Value = "9:volume v1 is attached to node-a (ü %)" }));
        Assert.Equal(GrpcStatusCode.FailedPrecondition, e.StatusCode);
        Assert.Equal("volume v1 is attached to node-a (ü %)", e.Status.Detail);
    }

    [Fact]
    public async Task Deadline_is_enforced_and_the_server_handler_is_cancelled()
    {
        // Long enough for the request to reach the handler even on a loaded machine.
        var call = _echo.CallAsync<UInt32Value>("Sleep", new UInt32Value { Value = 60_000 }, new CallOptions { Timeout = TimeSpan.FromSeconds(2) });
        await Eventually.TrueAsync(() => Service.StartedSleeps == 1, "the handler started");
        var e = await Assert.ThrowsAsync<RpcException>(() => call);
        Assert.Equal(GrpcStatusCode.DeadlineExceeded, e.StatusCode);
        await Eventually.TrueAsync(() => Service.CancelledCalls == 1, "server handler saw the cancellation");
    }

    [Fact]
    public async Task Client_cancellation_reports_cancelled_and_reaches_the_server()
    {
        using var cts = new CancellationTokenSource();
        var call = _echo.CallAsync<UInt32Value>("Sleep", new UInt32Value { Value = 60_000 }, new CallOptions { CancellationToken = cts.Token });
        await Eventually.TrueAsync(() => Service.StartedSleeps == 1, "the handler started");
        await cts.CancelAsync();
        var e = await Assert.ThrowsAsync<RpcException>(() => call);
        Assert.Equal(GrpcStatusCode.Cancelled, e.StatusCode);
        await Eventually.TrueAsync(() => Service.CancelledCalls == 1, "server handler saw the cancellation");
    }

    [Fact]
    public async Task Messages_up_to_the_limit_pass_and_larger_ones_are_resource_exhausted()
    {
        var big = ByteString.CopyFrom(new byte[3 * 1024 * 1024]);
        var reply = await _echo.CallAsync<BytesValue>("Unary", new BytesValue { Value = big });
        Assert.Equal(big.Length, reply.Value.Length);

        using var bigChannel = GrpcChannel.ForAddress(_server.Address, new GrpcChannelOptions { MaxSendMessageSize = 16 * 1024 * 1024 });
        var tooBig = new BytesValue { Value = ByteString.CopyFrom(new byte[5 * 1024 * 1024]) };
        var e = await Assert.ThrowsAsync<RpcException>(() =>
            new GrpcServiceClient(bigChannel, EchoService.Descriptor).CallAsync<BytesValue>("Unary", tooBig));
        Assert.Equal(GrpcStatusCode.ResourceExhausted, e.StatusCode);
    }

    [Fact]
    public async Task Unknown_method_is_unimplemented()
    {
        var status = await RawCallAsync("/sharedlvm.testing.Echo/Nope", Frame(0, [0x0a, 0x00]));
        Assert.Equal(((int)HttpStatusCode.OK, GrpcStatusCode.Unimplemented), (status.Http, status.Grpc));
    }

    [Theory]
    [InlineData(new byte[] { 0, 0, 0, 0, 16, 1, 2, 3 }, "truncated frame")]
    [InlineData(new byte[] { 2, 0, 0, 0, 0 }, "invalid compressed flag")]
    [InlineData(new byte[] { 1, 0, 0, 0, 1, 0xff }, "compressed without grpc-encoding")]
    [InlineData(new byte[] { 0, 0, 0, 0, 2, 0xff, 0xff }, "undecodable protobuf")]
    [InlineData(new byte[] { 0, 0, 0, 0, 0, 0, 0, 0, 0, 0 }, "two messages to a unary method")]
    public async Task Malformed_requests_get_internal_never_a_crash(byte[] body, string because)
    {
        var status = await RawCallAsync("/sharedlvm.testing.Echo/Unary", body);
        Assert.True(status.Grpc == GrpcStatusCode.Internal, $"{because}: got {status.Grpc}");

        // The server is still fine afterwards.
        var reply = await _echo.CallAsync<BytesValue>("Unary", new BytesValue { Value = ByteString.CopyFromUtf8("ok") });
        Assert.Equal("ok", reply.Value.ToStringUtf8());
    }

    [Fact]
    public async Task Unsupported_compression_is_unimplemented()
    {
        var status = await RawCallAsync("/sharedlvm.testing.Echo/Unary", Frame(1, [0x01]), ("grpc-encoding", "snappy"));
        Assert.Equal(GrpcStatusCode.Unimplemented, status.Grpc);
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
    public async Task Health_check_reports_serving_and_unknown_services_not_found()
    {
        var health = new GrpcServiceClient(_channel, HealthService.Descriptor);
        var reply = await health.CallAsync<global::Grpc.Health.V1.HealthCheckResponse>("Check", new global::Grpc.Health.V1.HealthCheckRequest());
        Assert.Equal(global::Grpc.Health.V1.HealthCheckResponse.Types.ServingStatus.Serving, reply.Status);
        var e = await Assert.ThrowsAsync<RpcException>(() =>
            health.CallAsync<global::Grpc.Health.V1.HealthCheckResponse>("Check", new global::Grpc.Health.V1.HealthCheckRequest { Service = "nope" }));
        Assert.Equal(GrpcStatusCode.NotFound, e.StatusCode);
    }

    [Fact]
    public async Task Unreachable_server_is_unavailable()
    {
        using var dead = GrpcChannel.ForAddress("http://127.0.0.1:1");
        var e = await Assert.ThrowsAsync<RpcException>(() =>
            new GrpcServiceClient(dead, EchoService.Descriptor).CallAsync<BytesValue>("Unary", new BytesValue()));
        Assert.Equal(GrpcStatusCode.Unavailable, e.StatusCode);
    }

    private static byte[] Frame(byte flag, byte[] payload) =>
        [flag, 0, 0, 0, (byte)payload.Length, .. payload];

    private async Task<(int Http, GrpcStatusCode? Grpc)> RawCallAsync(string path, byte[] body, params (string Key, string Value)[] headers)
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
        return ((int)response.StatusCode, raw is null ? null : (GrpcStatusCode)int.Parse(raw, System.Globalization.CultureInfo.InvariantCulture));
    }
}
