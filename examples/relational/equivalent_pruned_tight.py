from verify.spec import box, equivalent

# within 0.002: less than the largest difference, so a counterexample exists
PROPERTY = equivalent(box([0, 0, 0, 0], [1, 1, 1, 1]), 'pruned.onnx', delta=0.002)
