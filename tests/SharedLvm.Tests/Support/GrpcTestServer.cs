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
    private readonly string _state;

    private GrpcTestServer(WebApplication app, Uri address, string state)
    {
        _app = app;
        Address = address;
        _state = state;
    }

    public Uri Address { get; }

    public IServiceProvider Services => _app.Services;

    /// <summary>A policy that lets anyone call these services (the gate runs, with nobody refused), health and reflection too.</summary>
    public static AccessPolicy OpenPolicy(params Google.Protobuf.Reflection.ServiceDescriptor[] services)
    {
        var policy = new AccessPolicy().OpenHealth().AllowReflection(SharedLvm.Grpc.Security.PeerRoles.Reader);
        foreach (var path in services.SelectMany(MethodPaths.AllOf))
        {
            policy.Open(path);
        }

        return policy;
    }

    public static async Task<GrpcTestServer> StartAsync<TService>(AccessPolicy policy, TimeSpan? maxUnaryCall = null)
        where TService : class
    {
        var builder = WebApplication.CreateSlimBuilder();
        builder.Logging.ClearProviders();
        var state = Directory.CreateTempSubdirectory("slvm-grpc-").FullName;
        var audit = Path.Combine(state, "audit.log");
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
        return new GrpcTestServer(app, new Uri(address), state);
    }

    public async ValueTask DisposeAsync()
    {
        await _app.StopAsync();
        await _app.DisposeAsync();
        Directory.Delete(_state, recursive: true);
    }

    private sealed class NoMapping : IStatusMapper
    {
        public global::Grpc.Core.Status? Map(Exception exception) => null;
    }
}
