from verify.spec import box, equivalent

# the pruned model's score stays within 0.5 of the full model's everywhere
PROPERTY = equivalent(box([0, 0, 0, 0], [1, 1, 1, 1]), 'pruned.onnx', delta=0.5)
