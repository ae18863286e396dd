using Grpc.Net.Client;
using Grpc.Core;
using System.Text.Json;
using Google.Protobuf;
using SharedLvm.Contracts.V1;
using SharedLvm.Controller;
using SharedLvm.Controller.Api;
using SharedLvm.Hosting;
using Microsoft.AspNetCore.Builder;
using ControllerRpc = SharedLvm.Contracts.V1.Controller;
using SharedLvm.Grpc;
using SharedLvm.Grpc.Security;
using SharedLvm.Tests.Grpc;
using SharedLvm.Tests.Support;
using GrpcStatusCode = Grpc.Core.StatusCode;

namespace SharedLvm.Tests.Security;

/// <summary>
/// The controller over mutual TLS with a PKI from scripts/pki: who gets in, what each role may do,
/// and that a refused call changes nothing and is audited.
/// </summary>
public sealed class ControllerSecurityTests : IClassFixture<SecureController>
{
    /// <summary>The least role each API method needs, written out here, not derived from ApiAccess.</summary>
    public static readonly Dictionary<string, string> LeastRole = new(StringComparer.Ordinal)
    {
        ["GetPool"] = "reader", ["ListPools"] = "reader", ["GetVolume"] = "reader", ["ListVolumes"] = "reader",
        ["GetNode"] = "reader", ["ListNodes"] = "reader", ["GetNodeHealth"] = "reader", ["WatchEvents"] = "reader", ["GetControllerStatus"] = "reader",
        ["CreateVolume"] = "operator", ["ExtendVolume"] = "operator", ["CreateSnapshot"] = "operator", ["RestoreSnapshot"] = "operator", ["CloneVolume"] = "operator",
        ["SetVolumeLabels"] = "operator", ["AttachVolume"] = "operator", ["DetachVolume"] = "operator", ["RescanNode"] = "operator",
        ["CreatePool"] = "admin", ["UpdatePool"] = "admin", ["ForgetPool"] = "admin", ["DeleteVolume"] = "admin", ["FenceNode"] = "admin",
        ["DrainNode"] = "admin", ["ResumeNode"] = "admin", ["RestartNodeMultipathd"] = "admin",
    };

    private static readonly string[] Roles = ["reader", "operator", "admin"];
    private readonly string _state;
    private readonly TestPki _pki;
    private readonly InProcessController _controller;

    public ControllerSecurityTests(SecureController fixture)
    {
        _state = fixture.State;
        _pki = fixture.Pki;
        _controller = fixture.Controller;
    }

    public static TheoryData<string, string> RoleAndMethod()
    {
        var data = new TheoryData<string, string>();
        foreach (var role in Roles)
        {
            foreach (var method in LeastRole.Keys)
            {
                data.Add(role, method);
            }
        }

        return data;
    }

    [Fact]
    public async Task Every_mapped_method_health_and_reflection_included_has_an_access_rule_and_the_table_here_names_every_api_method()
    {
        // What the daemons really map (start-up also refuses a method without a rule).
        await using var controller = ControllerHost.Build(["--listen", "127.0.0.1:0", "--metrics-listen", "", "--state-dir", _state, "--insecure"]);
        var mapped = GrpcServer.MappedMethods(controller);
        Assert.Contains("/grpc.health.v1.Health/Check", mapped);
        Assert.Contains("/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo", mapped);
        Assert.Contains("/grpc.reflection.v1.ServerReflection/ServerReflectionInfo", mapped);
        Assert.All(mapped, path => Assert.True(ApiAccess.Policy().Covers(path), $"{path} has no access rule on the controller"));

        var agentState = Directory.CreateTempSubdirectory("slvm-rules-").FullName;
        await using var agent = SharedLvm.Agent.AgentHost.Build(["--listen", "127.0.0.1:0", "--metrics-listen", "", "--state-dir", agentState, "--node", "node-a", "--insecure"]);
        var agentMapped = GrpcServer.MappedMethods(agent);
        Assert.Contains("/sharedlvm.v1.Agent/ActivateVolume", agentMapped);
        Assert.All(agentMapped, path => Assert.True(SharedLvm.Agent.Api.AgentAccess.Policy().Covers(path), $"{path} has no access rule on the agent"));

        Assert.Equal(ControllerRpc.Descriptor.Methods.Select(m => m.Name).Order(StringComparer.Ordinal), LeastRole.Keys.Order(StringComparer.Ordinal));
    }

    [Theory]
    [MemberData(nameof(RoleAndMethod))]
    public async Task Each_role_against_each_method(string role, string methodName)
    {
        var client = role switch { "reader" => "rita", "operator" => "otto", _ => "ada" };
        using var channel = _pki.Channel(_controller.Address, client);
        var method = ControllerRpc.Descriptor.FindMethodByName(methodName);
        var allowed = Array.IndexOf(Roles, role) >= Array.IndexOf(Roles, LeastRole[methodName]);

        var code = await DynamicCalls.CallAsync(channel, method);

        if (allowed)
        {
            Assert.True(code is not GrpcStatusCode.PermissionDenied and not GrpcStatusCode.Unauthenticated, $"{role} was refused {methodName}: {code}");
        }
        else
        {
            Assert.Equal(GrpcStatusCode.PermissionDenied, code);
        }
    }

    [Fact]
    public async Task No_client_certificate_is_unauthenticated_and_health_stays_open()
    {
        using var anonymous = TestPki.UncheckedChannel(_controller.Address, null);
        var refused = await Assert.ThrowsAsync<RpcException>(async () => await Api(anonymous).ListPoolsAsync(new ListPoolsRequest()));
        Assert.Equal(GrpcStatusCode.Unauthenticated, refused.StatusCode);
        Assert.Contains("no client certificate", refused.Status.Detail, StringComparison.Ordinal);

        var health = await new global::Grpc.Health.V1.Health.HealthClient(anonymous).CheckAsync(new global::Grpc.Health.V1.HealthCheckRequest());
        Assert.Equal(global::Grpc.Health.V1.HealthCheckResponse.Types.ServingStatus.Serving, health.Status);
    }

    [Fact]
    public async Task Another_CAs_certificate_and_an_expired_one_are_refused_with_the_reason_and_audited()
    {
        using var otherPki = TestPki.Create(["client", "mallory", "admin"]);
        using (var foreign = TestPki.UncheckedChannel(_controller.Address, otherPki.Load("mallory")))
        {
            var e = await Assert.ThrowsAsync<RpcException>(async () => await Api(foreign).DrainNodeAsync(new DrainNodeRequest { Name = "node-a" }));
            Assert.Equal(GrpcStatusCode.Unauthenticated, e.StatusCode);
            Assert.Contains("not issued by this cluster's CA", e.Status.Detail, StringComparison.Ordinal);
        }

        // Valid for the CA's first second (a certificate can't predate its CA), then expired.
        using var old = _pki.Issue("old-admin", "admin", _pki.CaNotBefore, _pki.CaNotBefore.AddSeconds(1));
        while (DateTimeOffset.UtcNow < old.NotAfter.ToUniversalTime().AddSeconds(1))
        {
            await Task.Delay(100);
        }

        using (var expired = TestPki.UncheckedChannel(_controller.Address, old))
        {
            var e = await Assert.ThrowsAsync<RpcException>(async () => await Api(expired).ListPoolsAsync(new ListPoolsRequest()));
            Assert.Equal(GrpcStatusCode.Unauthenticated, e.StatusCode);
            Assert.Contains("CN=old-admin expired on", e.Status.Detail, StringComparison.Ordinal);
        }

        var audit = AuditLines();
        Assert.Contains(audit, a => a.Method.EndsWith("/DrainNode", StringComparison.Ordinal) && a.Code == "UNAUTHENTICATED" && a.Who == "unauthenticated");
    }

    [Fact]
    public async Task A_refused_call_changes_nothing_and_both_outcomes_are_audited_with_who()
    {
        using (var nodeA = _pki.Channel(_controller.Address, "node-a"))
        {
            await Registry(nodeA).RegisterNodeAsync(new RegisterNodeRequest { NodeName = "node-a", Address = "127.0.0.1:1" });
        }

        using var reader = _pki.Channel(_controller.Address, "rita");
        using var operatorChannel = _pki.Channel(_controller.Address, "otto");
        var denied = await Assert.ThrowsAsync<RpcException>(async () => await Api(operatorChannel).DrainNodeAsync(new DrainNodeRequest { Name = "node-a" }));
        Assert.Equal(GrpcStatusCode.PermissionDenied, denied.StatusCode);
        Assert.Contains("otto has role operator", denied.Status.Detail, StringComparison.Ordinal);
        Assert.Equal(NodeState.Ready, (await Api(reader).GetNodeAsync(new GetNodeRequest { Name = "node-a" })).State);

        using var admin = _pki.Channel(_controller.Address, "ada");
        Assert.Equal(NodeState.Draining, (await Api(admin).DrainNodeAsync(new DrainNodeRequest { Name = "node-a" })).State);

        var audit = AuditLines().Where(a => a.Method.EndsWith("/DrainNode", StringComparison.Ordinal)).ToList();
        Assert.Contains(audit, a => a is { Who: "otto", Role: "operator", Via: "certificate", Code: "PERMISSION_DENIED" } && a.Request.TryGetProperty("name", out var name) && name.GetString() == "node-a");
        Assert.Contains(audit, a => a is { Who: "ada", Role: "admin", Code: "OK" });
        Assert.DoesNotContain(AuditLines(), a => a.Method.EndsWith("/GetNode", StringComparison.Ordinal));
    }

    [Fact]
    public async Task A_node_certificate_speaks_only_for_its_own_node_and_reads_nothing()
    {
        using var nodeA = _pki.Channel(_controller.Address, "node-a");
        var asB = await Assert.ThrowsAsync<RpcException>(async () => await Registry(nodeA).RegisterNodeAsync(new RegisterNodeRequest { NodeName = "node-b", Address = "127.0.0.1:1" }));
        Assert.Equal(GrpcStatusCode.PermissionDenied, asB.StatusCode);
        Assert.Contains("node node-a may only speak for itself", asB.Status.Detail, StringComparison.Ordinal);
        var heartbeat = await Assert.ThrowsAsync<RpcException>(async () => await Registry(nodeA).HeartbeatAsync(new HeartbeatRequest { NodeName = "node-b" }));
        Assert.Equal(GrpcStatusCode.PermissionDenied, heartbeat.StatusCode);
        var list = await Assert.ThrowsAsync<RpcException>(async () => await Api(nodeA).ListVolumesAsync(new ListVolumesRequest()));
        Assert.Equal(GrpcStatusCode.PermissionDenied, list.StatusCode);

        using var admin = _pki.Channel(_controller.Address, "ada");
        Assert.DoesNotContain((await Api(admin).ListNodesAsync(new ListNodesRequest())).Nodes, n => n.Name == "node-b");

        // An API client's certificate is no node either.
        var clientAsNode = await Assert.ThrowsAsync<RpcException>(async () => await Registry(admin).RegisterNodeAsync(new RegisterNodeRequest { NodeName = "ada", Address = "127.0.0.1:1" }));
        Assert.Equal(GrpcStatusCode.PermissionDenied, clientAsNode.StatusCode);
    }

    [Fact]
    public async Task Bearer_tokens_carry_a_role_and_revoking_one_needs_no_restart()
    {
        var token = _pki.Run("token", "ci-bot", "operator");
        using var channel = TestPki.UncheckedChannel(_controller.Address, null);
        var withToken = new CallOptions(new Metadata { { "authorization", "Bearer " + token } });

        await Api(channel).ListPoolsAsync(new ListPoolsRequest(), withToken);
        var admin = await Assert.ThrowsAsync<RpcException>(async () => await Api(channel).FenceNodeAsync(new FenceNodeRequest { Name = "node-a" }, withToken));
        Assert.Equal(GrpcStatusCode.PermissionDenied, admin.StatusCode);
        Assert.Contains("ci-bot has role operator", admin.Status.Detail, StringComparison.Ordinal);

        var wrong = await Assert.ThrowsAsync<RpcException>(async () => await Api(channel).ListPoolsAsync(new ListPoolsRequest(),
            new CallOptions(new Metadata { { "authorization", "Bearer " + new string('0', 64) } })));
        Assert.Equal(GrpcStatusCode.Unauthenticated, wrong.StatusCode);
        Assert.DoesNotContain(File.ReadAllText(_pki.Tokens), token, StringComparison.Ordinal);

        File.WriteAllLines(_pki.Tokens, File.ReadAllLines(_pki.Tokens).Where(l => !l.StartsWith("ci-bot ", StringComparison.Ordinal)));
        await Eventually.TrueAsync(async () =>
        {
            try
            {
                await Api(channel).ListPoolsAsync(new ListPoolsRequest(), withToken);
                return false;
            }
            catch (RpcException e) when (e.StatusCode == GrpcStatusCode.Unauthenticated)
            {
                return true;
            }
        }, "the revoked token is refused");
        Assert.DoesNotContain(token, File.ReadAllText(Path.Combine(_state, "audit.log")), StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_python_grpcio_tls_client_is_served_with_its_certificate_and_refused_without()
    {
        InteropTests.DemandPython();
        var reader = _pki.Files("rita");
        var served = await InteropTests.RunPythonClientAsync(_controller.Address.Port, "list_pools", _pki.Ca, reader.CertificateFile, reader.KeyFile);
        Assert.Contains("\"code\": \"OK\"", served, StringComparison.Ordinal);
        var refused = await InteropTests.RunPythonClientAsync(_controller.Address.Port, "list_pools", _pki.Ca);
        Assert.Contains("\"code\": \"UNAUTHENTICATED\"", refused, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Slvm_speaks_tls_with_a_client_certificate_and_says_why_it_is_refused_without_one()
    {
        var address = $"127.0.0.1:{_controller.Address.Port}";
        var reader = _pki.Files("rita");
        var (code, _, stderr) = await SharedLvm.Tests.Cli.SlvmTests.Run("--controller", address, "--ca", _pki.Ca, "--cert", reader.CertificateFile, "--key", reader.KeyFile, "pool", "list");
        Assert.True(code == 0, stderr);

        var (denied, _, deniedErr) = await SharedLvm.Tests.Cli.SlvmTests.Run("--controller", address, "--ca", _pki.Ca, "--cert", reader.CertificateFile, "--key", reader.KeyFile, "node", "drain", "node-a");
        Assert.Equal((int)GrpcStatusCode.PermissionDenied, denied);
        Assert.Contains("PERMISSION_DENIED: rita has role reader", deniedErr, StringComparison.Ordinal);

        var (anonymous, _, anonymousErr) = await SharedLvm.Tests.Cli.SlvmTests.Run("--controller", address, "--ca", _pki.Ca, "pool", "list");
        Assert.Equal((int)GrpcStatusCode.Unauthenticated, anonymous);
        Assert.Contains("UNAUTHENTICATED: no client certificate", anonymousErr, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Mutations_beyond_a_callers_rate_get_resource_exhausted_and_reads_go_on()
    {
        var state = Directory.CreateTempSubdirectory("slvm-rate-").FullName;
        await using var limited = await InProcessController.StartAsync(state,
            [.. _pki.ServerArgs("controller"), "--Controller:Mutations:PerSecond", "1", "--Controller:Mutations:Burst", "3"]);
        using var admin = _pki.Channel(limited.Address, "ada");
        var codes = new List<GrpcStatusCode>();
        for (var i = 0; i < 6; i++)
        {
            codes.Add(await DynamicCalls.CallAsync(admin, ControllerRpc.Descriptor.FindMethodByName("SetVolumeLabels")));
        }

        Assert.Contains(GrpcStatusCode.ResourceExhausted, codes);
        Assert.NotEqual(GrpcStatusCode.ResourceExhausted, codes[0]);
        await Api(admin).ListPoolsAsync(new ListPoolsRequest());
        Directory.Delete(state, recursive: true);
    }

    [Fact]
    public void Missing_files_and_a_world_readable_key_fail_start_up_saying_what_to_do()
    {
        var missing = Assert.Throws<TlsConfigurationException>(() => ControllerHost.Build(
            ["--listen", "127.0.0.1:0", "--metrics-listen", "", "--state-dir", _state, "--tls-ca", "/nonexistent/ca.crt"]));
        Assert.Contains("/nonexistent/ca.crt does not exist", missing.Message, StringComparison.Ordinal);
        Assert.Contains("--insecure", missing.Message, StringComparison.Ordinal);

        var key = _pki.Files("controller").KeyFile;
        File.SetUnixFileMode(key, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.GroupRead | UnixFileMode.OtherRead);
        var exposed = Assert.Throws<TlsConfigurationException>(() => ControllerHost.Build(
            ["--listen", "127.0.0.1:0", "--metrics-listen", "", "--state-dir", _state, .. _pki.ServerArgs("controller")]));
        Assert.Contains("chmod 600", exposed.Message, StringComparison.Ordinal);
        File.SetUnixFileMode(key, UnixFileMode.UserRead | UnixFileMode.UserWrite);
    }

    private static ControllerRpc.ControllerClient Api(GrpcChannel channel) => new(channel);

    private static NodeRegistry.NodeRegistryClient Registry(GrpcChannel channel) => new(channel);

    private List<AuditLine> AuditLines() =>
        File.ReadAllLines(Path.Combine(_state, "audit.log"))
            .Select(l => JsonSerializer.Deserialize<AuditLine>(l, new JsonSerializerOptions { PropertyNamingPolicy = JsonNamingPolicy.SnakeCaseLower })!)
            .ToList();

    private sealed record AuditLine(string Time, string Who, string Role, string Via, string Peer, string Method, JsonElement Request, string Code, string Detail);
}

/// <summary>One PKI and one TLS controller for the class: the role table alone is 63 calls.</summary>
public sealed class SecureController : IAsyncLifetime
{
    public string State { get; } = Directory.CreateTempSubdirectory("slvm-secure-controller-").FullName;

    internal TestPki Pki { get; private set; } = null!;

    internal InProcessController Controller { get; private set; } = null!;

    public async ValueTask InitializeAsync()
    {
        Pki = TestPki.Create(["controller"], ["node", "node-a"], ["node", "node-b"],
            ["client", "rita", "reader"], ["client", "otto", "operator"], ["client", "ada", "admin"]);
        Controller = await InProcessController.StartAsync(State, [.. Pki.ServerArgs("controller"), "--tokens", Pki.Tokens]);
    }

    public async ValueTask DisposeAsync()
    {
        await Controller.DisposeAsync();
        Pki.Dispose();
        Directory.Delete(State, recursive: true);
    }
}

/// <summary>The expiry of the certificate a daemon serves with is a metric, for the alert weeks before.</summary>
public sealed class CertificateExpiryMetricTests : IClassFixture<SecureController>
{
    private readonly SecureController _fixture;

    public CertificateExpiryMetricTests(SecureController fixture) => _fixture = fixture;

    [Fact]
    public void A_tls_daemon_exports_when_its_certificate_expires()
    {
        using var certificate = System.Security.Cryptography.X509Certificates.X509Certificate2.CreateFromPem(File.ReadAllText(_fixture.Pki.Files("controller").CertificateFile));
        var seen = new Dictionary<string, long>(StringComparer.Ordinal);
        using var listener = new System.Diagnostics.Metrics.MeterListener
        {
            InstrumentPublished = (instrument, l) =>
            {
                if (instrument.Name == "sharedlvm_tls_certificate_expiry_timestamp_seconds")
                {
                    l.EnableMeasurementEvents(instrument);
                }
            },
        };
        listener.SetMeasurementEventCallback<long>((_, value, tags, _) =>
        {
            foreach (var tag in tags)
            {
                if (tag.Key == "subject")
                {
                    seen[(string)tag.Value!] = value;
                }
            }
        });
        listener.Start();
        listener.RecordObservableInstruments();

        // Other tests' PKIs also issue a "controller" certificate, seconds apart: within an hour is this one.
        var expected = new DateTimeOffset(certificate.NotAfter.ToUniversalTime(), TimeSpan.Zero).ToUnixTimeSeconds();
        Assert.InRange(seen["controller"], expected - 3600, expected + 3600);
        Assert.True(expected - DateTimeOffset.UtcNow.ToUnixTimeSeconds() > 300 * 86400, "scripts/pki issues for 397 days by default");
    }
}
