using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using SharedLvm.Grpc.Security;
using SharedLvm.Hosting;
using SharedLvm.Hosting.Security;

namespace SharedLvm.Tests.Support;

/// <summary>
/// A real Kestrel HTTP/2 (h2c) server on 127.0.0.1 with a random port, configured exactly as the
/// daemons configure theirs (<see cref="GrpcServer"/>: limits, deadlines, the call gate, health,
/// reflection), with a policy that lets everyone call everything.
/// </summary>
internal sealed class GrpcTestServer : IAsyncDisposable
{
    private readonly WebApplication _app;

    private GrpcTestServer(WebApplication app, Uri address)
    {
        _app = app;
        Address = address;
    }

    public Uri Address { get; }

    public IServiceProvider Services => _app.Services;

    public static async Task<GrpcTestServer> StartAsync<TService>(AccessPolicy policy, TimeSpan? maxUnaryCall = null)
        where TService : class
    {
        var builder = WebApplication.CreateSlimBuilder();
        builder.Logging.ClearProviders();
        var audit = Path.Combine(Directory.CreateTempSubdirectory("slvm-grpc-").FullName, "audit.log");
        GrpcServer.Configure<NoMapping>(builder, new GrpcServerSettings("127.0.0.1:0", TransportSecurity.Plaintext, policy, audit)
        {
            MaxUnaryCall = maxUnaryCall ?? TimeSpan.FromMinutes(10),
        });
        builder.Services.AddSingleton<TService>();
        var app = builder.Build();
        GrpcServer.UseTimeoutClamp(app);
        app.MapGrpcService<TService>();
        GrpcServer.MapCommon(app);
        await app.StartAsync();
        var address = app.Services.GetRequiredService<IServer>().Features.Get<IServerAddressesFeature>()!.Addresses.First();
        return new GrpcTestServer(app, new Uri(address));
    }

    public async ValueTask DisposeAsync()
    {
        await _app.StopAsync();
        await _app.DisposeAsync();
    }

    private sealed class NoMapping : IStatusMapper
    {
        public global::Grpc.Core.Status? Map(Exception exception) => null;
    }
}
