using ServiceDescriptor = Google.Protobuf.Reflection.ServiceDescriptor;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Routing;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;

namespace SharedLvm.Grpc;

public static class GrpcEndpointRouteBuilderExtensions
{
    /// <summary>Registers options for the gRPC server.</summary>
    public static IServiceCollection AddGrpcServer(this IServiceCollection services, Action<GrpcServerOptions>? configure = null)
    {
        var builder = services.AddOptions<GrpcServerOptions>();
        if (configure is not null)
        {
            builder.Configure(configure);
        }

        return services;
    }

    /// <summary>
    /// Maps every method of <paramref name="service"/> to <typeparamref name="TService"/> (resolved
    /// from DI per call). Methods the class lacks answer UNIMPLEMENTED.
    /// </summary>
    public static IEndpointConventionBuilder MapGrpcService<TService>(this IEndpointRouteBuilder endpoints, ServiceDescriptor service)
        where TService : class
    {
        var options = endpoints.ServiceProvider.GetRequiredService<IOptions<GrpcServerOptions>>().Value;
        var logger = endpoints.ServiceProvider.GetRequiredService<ILoggerFactory>().CreateLogger("SharedLvm.Grpc.Server");
        // Resolved once here, not per call; building it now also fails start-up on a bad tokens file.
        var gate = endpoints.ServiceProvider.GetService<Security.IServerCallGate>();
        var builders = new List<IEndpointConventionBuilder>();
        var missing = new List<string>();
        foreach (var method in GrpcMethod.AllOf(service))
        {
            var invoker = ServiceInvoker.TryBind(typeof(TService), method);
            RequestDelegate handler;
            if (invoker is null)
            {
                missing.Add(method.Name);
                handler = http => AnswerUnimplemented(http, $"Method {method.Path} is not implemented.");
            }
            else
            {
                handler = new ServerCallHandler(method, invoker, options, logger, gate).HandleCallAsync;
            }

            builders.Add(endpoints.Map(method.Path, handler).WithDisplayName("gRPC " + method.Path));
        }

        if (missing.Count > 0)
        {
            GrpcServerLog.MethodsNotImplemented(logger, service.FullName, missing.Count, string.Join(", ", missing));
        }

        return new CompositeConventionBuilder(builders);
    }

    /// <summary>Answers gRPC requests for paths no service maps with UNIMPLEMENTED; others with 404.</summary>
    public static IEndpointConventionBuilder MapGrpcUnknownMethodFallback(this IEndpointRouteBuilder endpoints)
    {
        var logger = endpoints.ServiceProvider.GetRequiredService<ILoggerFactory>().CreateLogger("SharedLvm.Grpc.Server");
        return endpoints.MapFallback(http =>
        {
            if (!GrpcProtocol.IsGrpcContentType(http.Request.ContentType))
            {
                http.Response.StatusCode = StatusCodes.Status404NotFound;
                return Task.CompletedTask;
            }

            GrpcServerLog.UnknownMethod(logger, http.Request.Path, http.Connection.RemoteIpAddress?.ToString() ?? "unknown");
            return AnswerUnimplemented(http, $"Method {http.Request.Path} is not implemented by this server.");
        });
    }

    private static Task AnswerUnimplemented(HttpContext http, string detail)
    {
        if (ServerCallHandler.ValidateRequest(http))
        {
            http.Response.ContentType = GrpcProtocol.ContentType;
            ServerCallHandler.WriteStatus(http, new Status(StatusCode.Unimplemented, detail), []);
        }

        return Task.CompletedTask;
    }

    private sealed class CompositeConventionBuilder(IReadOnlyList<IEndpointConventionBuilder> builders) : IEndpointConventionBuilder
    {
        public void Add(Action<EndpointBuilder> convention)
        {
            foreach (var builder in builders)
            {
                builder.Add(convention);
            }
        }
    }
}
