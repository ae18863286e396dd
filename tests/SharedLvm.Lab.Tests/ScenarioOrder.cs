using Xunit.Sdk;
using Xunit.v3;

namespace SharedLvm.Lab.Tests;

/// <summary>Scenarios run in the order of their names (S1_, S2_...): the last ones power a node off.</summary>
public sealed class ScenarioOrder : ITestCaseOrderer
{
    public IReadOnlyCollection<TTestCase> OrderTestCases<TTestCase>(IReadOnlyCollection<TTestCase> testCases)
        where TTestCase : notnull, ITestCase =>
        testCases.OrderBy(t => t.TestMethodName, StringComparer.Ordinal).ToArray();
}
