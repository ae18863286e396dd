using System.Globalization;
using System.Text;
using OpenTelemetry.Metrics;

namespace SharedLvm.Telemetry;

/// <summary>
/// Renders OpenTelemetry metrics in the Prometheus text exposition format 0.0.4: monotonic sums as
/// counters ("_total"), gauges and non-monotonic sums as gauges, histograms as cumulative
/// "_bucket{le}", "_sum" and "_count". Labels come in the SDK's order (constant labels first, then the
/// tags sorted by key). Instruments are named in Prometheus style already
/// (sharedlvm_*_seconds, _bytes), so names are only sanitised, never rewritten.
/// </summary>
public static class PrometheusText
{
    public const string ContentType = "text/plain; version=0.0.4; charset=utf-8";

    public static void Write(StringBuilder text, Metric metric, IReadOnlyList<KeyValuePair<string, string>>? constantLabels = null)
    {
        var name = Sanitize(metric.Name);
        var (type, suffix) = metric.MetricType switch
        {
            MetricType.LongSum or MetricType.DoubleSum => ("counter", name.EndsWith("_total", StringComparison.Ordinal) ? string.Empty : "_total"),
            MetricType.Histogram => ("histogram", string.Empty),
            _ => ("gauge", string.Empty),
        };
        var family = name + suffix;
        if (!string.IsNullOrEmpty(metric.Description))
        {
            text.Append("# HELP ").Append(family).Append(' ').Append(EscapeHelp(metric.Description)).Append('\n');
        }

        text.Append("# TYPE ").Append(family).Append(' ').Append(type).Append('\n');
        foreach (ref readonly var point in metric.GetMetricPoints())
        {
            var labels = Labels(point, constantLabels);
            switch (metric.MetricType)
            {
                case MetricType.Histogram:
                    long cumulative = 0;
                    foreach (var bucket in point.GetHistogramBuckets())
                    {
                        cumulative += bucket.BucketCount;
                        var le = double.IsPositiveInfinity(bucket.ExplicitBound) ? "+Inf" : Number(bucket.ExplicitBound);
                        Sample(text, name + "_bucket", WithLabel(labels, "le", le), cumulative.ToString(CultureInfo.InvariantCulture));
                    }

                    Sample(text, name + "_sum", labels, Number(point.GetHistogramSum()));
                    Sample(text, name + "_count", labels, point.GetHistogramCount().ToString(CultureInfo.InvariantCulture));
                    break;
                case MetricType.LongSum or MetricType.LongSumNonMonotonic:
                    Sample(text, family, labels, point.GetSumLong().ToString(CultureInfo.InvariantCulture));
                    break;
                case MetricType.DoubleSum or MetricType.DoubleSumNonMonotonic:
                    Sample(text, family, labels, Number(point.GetSumDouble()));
                    break;
                case MetricType.LongGauge:
                    Sample(text, family, labels, point.GetGaugeLastValueLong().ToString(CultureInfo.InvariantCulture));
                    break;
                case MetricType.DoubleGauge:
                    Sample(text, family, labels, Number(point.GetGaugeLastValueDouble()));
                    break;
            }
        }
    }

    public static string Number(double value) => value switch
    {
        double.PositiveInfinity => "+Inf",
        double.NegativeInfinity => "-Inf",
        double.NaN => "NaN",
        _ => value.ToString("R", CultureInfo.InvariantCulture),
    };

    public static string Sanitize(string name)
    {
        var builder = new StringBuilder(name.Length);
        foreach (var c in name)
        {
            builder.Append(char.IsAsciiLetterOrDigit(c) || c == '_' || c == ':' ? c : '_');
        }

        if (builder.Length == 0 || char.IsAsciiDigit(builder[0]))
        {
            builder.Insert(0, '_');
        }

        return builder.ToString();
    }

    private static List<(string Key, string Value)> Labels(in MetricPoint point, IReadOnlyList<KeyValuePair<string, string>>? constantLabels)
    {
        var labels = new List<(string, string)>();
        foreach (var (key, value) in constantLabels ?? [])
        {
            labels.Add((Sanitize(key), value));
        }

        foreach (var tag in point.Tags)
        {
            labels.Add((Sanitize(tag.Key), Convert.ToString(tag.Value, CultureInfo.InvariantCulture) ?? string.Empty));
        }

        return labels;
    }

    private static List<(string Key, string Value)> WithLabel(List<(string Key, string Value)> labels, string key, string value) => [.. labels, (key, value)];

    private static void Sample(StringBuilder text, string name, List<(string Key, string Value)> labels, string value)
    {
        text.Append(name);
        if (labels.Count > 0)
        {
            text.Append('{');
            for (var i = 0; i < labels.Count; i++)
            {
                text.Append(i == 0 ? string.Empty : ",").Append(labels[i].Key).Append("=\"").Append(EscapeLabel(labels[i].Value)).Append('"');
            }

            text.Append('}');
        }

        text.Append(' ').Append(value).Append('\n');
    }

    private static string EscapeLabel(string value) =>
        value.Replace("\\", "\\\\", StringComparison.Ordinal).Replace("\"", "\\\"", StringComparison.Ordinal).Replace("\n", "\\n", StringComparison.Ordinal);

    private static string EscapeHelp(string value) =>
        value.Replace("\\", "\\\\", StringComparison.Ordinal).Replace("\n", "\\n", StringComparison.Ordinal);
}
