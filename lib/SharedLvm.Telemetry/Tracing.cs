using Microsoft.AspNetCore.Builder;
using Microsoft.Extensions.DependencyInjection;
using OpenTelemetry;
using OpenTelemetry.Exporter;
using OpenTelemetry.Resources;
using OpenTelemetry.Trace;

namespace SharedLvm.Telemetry;

/// <summary>
/// Traces of an attach, detach or rescan across controller and agent. Context crosses the wire in
/// the W3C <c>traceparent</c> request header: ASP.NET Core reads it on the server and
/// SocketsHttpHandler writes it on the client (both use DistributedContextPropagator, W3C by
/// default), so the gRPC layer needs no code of its own for it. Spans are exported by OTLP only
/// when an endpoint is configured; without one no listener exists and spans cost nothing.
/// </summary>
public static class Tracing
{
    /// <summary>Every SharedLvm ActivitySource is named "SharedLvm.&lt;component&gt;".</summary>
    public const string SourcePattern = "SharedLvm.*";

    public static void Configure(WebApplicationBuilder builder, string serviceName, string? otlpEndpoint)
    {
        if (string.IsNullOrWhiteSpace(otlpEndpoint))
        {
            return;
        }

        var endpoint = Uri.TryCreate(otlpEndpoint, UriKind.Absolute, out var uri) && uri.Scheme is "http" or "https"
            ? uri
            : throw new ArgumentException($"--otlp-endpoint '{otlpEndpoint}' is not an http(s) URL.", nameof(otlpEndpoint));
        var provider = Sdk.CreateTracerProviderBuilder()
            .SetResourceBuilder(ResourceBuilder.CreateDefault().AddService(serviceName, serviceVersion: typeof(Tracing).Assembly.GetName().Version?.ToString()))
            .AddSource(SourcePattern)
            .AddSource("Microsoft.AspNetCore")
            .AddSource("System.Net.Http")
            .AddOtlpExporter(o =>
            {
                o.Endpoint = endpoint;
                o.Protocol = OtlpExportProtocol.HttpProtobuf;
                o.TimeoutMilliseconds = 10_000;
            })
            .Build();
        builder.Services.AddSingleton(provider);
    }
}
