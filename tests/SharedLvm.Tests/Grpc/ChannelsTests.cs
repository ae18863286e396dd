using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using Google.Protobuf.WellKnownTypes;
using Grpc.Core;
using SharedLvm.Grpc;
using SharedLvm.Tests.Interop;
using SharedLvm.Tests.Support;

namespace SharedLvm.Tests.Grpc;

/// <summary>
/// The channel every SharedLvm client uses, against the server configuration both daemons use.
/// </summary>
public sealed class ChannelsTests : IAsyncLifetime
{
    private GrpcTestServer _server = null!;

    public async ValueTask InitializeAsync() =>
        _server = await GrpcTestServer.StartAsync<EchoService>(GrpcTestServer.OpenPolicy(Echo.Descriptor));

    public async ValueTask DisposeAsync() => await _server.DisposeAsync();

    /// <summary>
    /// A powered-off host sends no FIN or RST: without HTTP/2 pings an in-flight call would wait for
    /// TCP's own timeout (minutes to hours). A relay that stops passing bytes but keeps both sockets
    /// open is that host, seen from each side.
    /// </summary>
    [Fact]
    public async Task A_peer_that_goes_silent_is_noticed_by_both_sides_within_30_seconds()
    {
        await using var relay = await SilentRelay.StartAsync(_server.Address.Port);
        using var channel = Channels.Open(new Uri($"http://127.0.0.1:{relay.Port}"), ssl: null);
        var echo = new Echo.EchoClient(channel);
        var service = (EchoService)_server.Services.GetService(typeof(EchoService))!;

        using var call = echo.SleepAsync(new UInt32Value { Value = 600_000 });
        await Eventually.TrueAsync(() => service.StartedSleeps == 1, "the call reached the server");
        relay.GoSilent();
        var stopwatch = Stopwatch.StartNew();

        var e = await Assert.ThrowsAsync<RpcException>(() => call.ResponseAsync.WaitAsync(TimeSpan.FromSeconds(60)));
        Assert.True(e.StatusCode == StatusCode.Unavailable, $"{e.StatusCode}: {e.Status.Detail} {e.Status.DebugException}");
        Assert.True(stopwatch.Elapsed < TimeSpan.FromSeconds(30), $"the client noticed after {stopwatch.Elapsed}");
        await Eventually.TrueAsync(() => service.CancelledCalls == 1, "the server cancelled the dead client's call", TimeSpan.FromSeconds(30) - stopwatch.Elapsed);
    }

    /// <summary>TCP relay to a local port that can stop passing bytes while keeping both connections open.</summary>
    private sealed class SilentRelay : IAsyncDisposable
    {
        private readonly TcpListener _listener;
        private readonly int _target;
        private readonly CancellationTokenSource _stop = new();
        private readonly List<Socket> _sockets = [];
        private volatile bool _silent;

        private SilentRelay(TcpListener listener, int target)
        {
            _listener = listener;
            _target = target;
        }

        public int Port => ((IPEndPoint)_listener.LocalEndpoint).Port;

        public static Task<SilentRelay> StartAsync(int target)
        {
            var listener = new TcpListener(IPAddress.Loopback, 0);
            listener.Start();
            var relay = new SilentRelay(listener, target);
            _ = relay.AcceptAsync();
            return Task.FromResult(relay);
        }

        public void GoSilent() => _silent = true;

        public ValueTask DisposeAsync()
        {
            _stop.Cancel();
            _listener.Stop();
            lock (_sockets)
            {
                _sockets.ForEach(s => s.Dispose());
            }

            _stop.Dispose();
            return ValueTask.CompletedTask;
        }

        private async Task AcceptAsync()
        {
            try
            {
                while (true)
                {
                    var client = await _listener.AcceptSocketAsync(_stop.Token);
                    var server = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
                    await server.ConnectAsync(IPAddress.Loopback, _target, _stop.Token);
                    lock (_sockets)
                    {
                        _sockets.AddRange([client, server]);
                    }

                    _ = PumpAsync(client, server);
                    _ = PumpAsync(server, client);
                }
            }
            catch (Exception e) when (e is OperationCanceledException or SocketException or ObjectDisposedException)
            {
            }
        }

        private async Task PumpAsync(Socket from, Socket to)
        {
            var buffer = new byte[16384];
            try
            {
                while (true)
                {
                    var read = await from.ReceiveAsync(buffer, SocketFlags.None, _stop.Token);
                    if (read == 0)
                    {
                        return;
                    }

                    if (!_silent)
                    {
                        await to.SendAsync(buffer.AsMemory(0, read), SocketFlags.None, _stop.Token);
                    }
                }
            }
            catch (Exception e) when (e is OperationCanceledException or SocketException or ObjectDisposedException)
            {
            }
        }
    }
}
