using Grpc.Core;
using System.Diagnostics;
using System.Text.Json;
using Google.Protobuf;
using Google.Protobuf.WellKnownTypes;
using Grpc.Health.V1;
using SharedLvm.Tests.Interop;
using Microsoft.Extensions.DependencyInjection;
using SharedLvm.Grpc;
using SharedLvm.Tests.Support;

namespace SharedLvm.Tests.Grpc;

/// <summary>
/// Interop with a different gRPC implementation: Debian's python3-grpcio (gRPC C-core) as a client of
/// our server and as a server for our client. Fails without python3-grpcio unless
/// SHAREDLVM_SKIP_INTEROP=1.
/// </summary>
public sealed class InteropTests : IAsyncLifetime
{
    private const string SkipVariable = "SHAREDLVM_SKIP_INTEROP";
    private const string Python = "/usr/bin/python3";
    private GrpcTestServer _server = null!;

    public async ValueTask InitializeAsync()
    {
        _server = await GrpcTestServer.StartAsync<EchoService>(GrpcTestServer.OpenPolicy(SharedLvm.Tests.Interop.Echo.Descriptor));
    }

    public async ValueTask DisposeAsync() => await _server.DisposeAsync();

    [Theory]
    [InlineData("unary", "\"value\": \"hello\"")]
    [InlineData("gzip", "\"length\": 100000")]
    [InlineData("large", "\"length\": 3145728")]
    [InlineData("too_large", "\"code\": \"RESOURCE_EXHAUSTED\"")]
    [InlineData("stream", "\"values\": [1, 2, 3, 4, 5]")]
    [InlineData("deadline", "\"code\": \"DEADLINE_EXCEEDED\"")]
    [InlineData("error", "\"code\": \"FAILED_PRECONDITION\", \"details\": \"volume vol-1 is attached to node-a (\\u00fcn\\u00efcode %)\"")]
    [InlineData("unknown_method", "\"code\": \"UNIMPLEMENTED\"")]
    [InlineData("health", "\"raw\": \"0801\"")]
    public async Task Python_grpcio_client_calls_our_server(string scenario, string expected)
    {
        DemandPython();
        var output = await RunPythonClientAsync(scenario);
        Assert.Contains(expected, output, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Python_grpcio_client_cancellation_reaches_our_handler()
    {
        DemandPython();
        var output = await RunPythonClientAsync("cancel");
        Assert.Contains("\"cancelled\": true", output, StringComparison.Ordinal);
        var echo = _server.Services.GetRequiredService<EchoService>();
        await Eventually.TrueAsync(() => echo.CancelledCalls == 1, "our handler observed the python client's cancellation");
    }

    [Fact]
    public async Task Our_client_calls_a_python_grpcio_server()
    {
        DemandPython();
        using var python = StartPython(Repo.PathOf("tests", "interop", "grpc_server.py"));
        var first = await python.StandardOutput.ReadLineAsync().WaitAsync(TimeSpan.FromSeconds(30));
        Assert.StartsWith("PORT ", first, StringComparison.Ordinal);
        using var channel = Channels.Open(new Uri($"http://127.0.0.1:{first!["PORT ".Length..]}"), null);
        var echo = new Echo.EchoClient(channel);

        // Unary with metadata both ways.
        var reply = await echo.UnaryAsync(new BytesValue { Value = ByteString.CopyFromUtf8("hi") });
        Assert.Equal("hi", reply.Value.ToStringUtf8());

        // Large message (3 MiB) both ways.
        var big = ByteString.CopyFrom(Enumerable.Range(0, 3 * 1024 * 1024).Select(i => (byte)i).ToArray());
        Assert.Equal(big, (await echo.UnaryAsync(new BytesValue { Value = big })).Value);

        // Server streaming.
        var values = new List<uint>();
        using (var stream = echo.Count(new UInt32Value { Value = 7 }))
        {
            await foreach (var v in stream.ResponseStream.ReadAllAsync())
            {
                values.Add(v.Value);
            }
        }

        Assert.Equal([1u, 2, 3, 4, 5, 6, 7], values);

        // Error status with a non-ASCII message, percent-encoded by C-core.
        var error = await Assert.ThrowsAsync<RpcException>(async () => await echo.FailAsync(new StringValue { Value = "6:volume exists with size 2 GiB (ü)" }));
        Assert.Equal(StatusCode.AlreadyExists, error.StatusCode);
        Assert.Equal("volume exists with size 2 GiB (ü)", error.Status.Detail);

        // Deadline: our deadline propagates as grpc-timeout and we stop waiting.
        var stopwatch = Stopwatch.StartNew();
        var deadline = await Assert.ThrowsAsync<RpcException>(async () => await echo.SleepAsync(new UInt32Value { Value = 5000 }, deadline: DateTime.UtcNow.AddMilliseconds(300)));
        Assert.Equal(StatusCode.DeadlineExceeded, deadline.StatusCode);
        Assert.True(stopwatch.Elapsed < TimeSpan.FromSeconds(4), $"took {stopwatch.Elapsed}");

        // Cancellation.
        using var cts = new CancellationTokenSource(TimeSpan.FromMilliseconds(300));
        var cancelled = await Assert.ThrowsAsync<RpcException>(async () => await echo.SleepAsync(new UInt32Value { Value = 5000 }, cancellationToken: cts.Token));
        Assert.Equal(StatusCode.Cancelled, cancelled.StatusCode);

        // Unknown method: C-core answers UNIMPLEMENTED.
        var unknown = await Assert.ThrowsAsync<RpcException>(async () => await new Health.HealthClient(channel).CheckAsync(new HealthCheckRequest()));
        Assert.Equal(StatusCode.Unimplemented, unknown.StatusCode);

        python.StandardInput.Close();
        await python.WaitForExitAsync().WaitAsync(TimeSpan.FromSeconds(10));
    }

    /// <summary>Skipped only when SHAREDLVM_SKIP_INTEROP=1 says so; otherwise python3-grpcio must be there.</summary>
    internal static void DemandPython()
    {
        Requirement.SkipIfRequested(SkipVariable, "interop with python3-grpcio");
        var check = StartPython("-c", "import grpc");
        check.WaitForExit(30_000);
        Requirement.Demand(check.ExitCode == 0, "python3-grpcio is not installed for /usr/bin/python3", SkipVariable);
    }

    private Task<string> RunPythonClientAsync(string scenario) => RunPythonClientAsync(_server.Address.Port, scenario);

    internal static async Task<string> RunPythonClientAsync(int port, string scenario, params string[] tlsFiles)
    {
        using var process = StartPython([Repo.PathOf("tests", "interop", "grpc_client.py"), $"127.0.0.1:{port}", scenario, .. tlsFiles]);
        var stdout = process.StandardOutput.ReadToEndAsync();
        var stderr = process.StandardError.ReadToEndAsync();
        await process.WaitForExitAsync().WaitAsync(TimeSpan.FromSeconds(60));
        var output = await stdout;
        Assert.True(process.ExitCode == 0, $"python client failed: {await stderr}");
        using var _ = JsonDocument.Parse(output);
        return output;
    }

    private static Process StartPython(params string[] arguments)
    {
        var info = new ProcessStartInfo(Python)
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            RedirectStandardInput = true,
        };
        foreach (var argument in arguments)
        {
            info.ArgumentList.Add(argument);
        }

        return Process.Start(info)!;
    }
}
