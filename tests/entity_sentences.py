"""A fixed set of sentences with the kinds and roles the gazetteer and ``entity_roles`` should give them.

Each case is a sentence and every entity it should find, as ``Name=kind`` or ``Name=kind:role+role``. Written
for the tests (not taken from any outlet); shared by ``test_entity_roles.py`` and the accuracy it reports.
"""

from __future__ import annotations

CASES: tuple[tuple[str, str], ...] = (
    # decoupling: moving away from a vendor
    (
        "Meta shifts inference from NVIDIA to its own MTIA chips.",
        "Meta=company:buyer; NVIDIA=company:displaced_vendor; MTIA=chip_or_product",
    ),
    (
        "Microsoft is moving part of its AI workloads away from Nvidia GPUs onto its Maia accelerators.",
        "Microsoft=company:buyer; NVIDIA=company:displaced_vendor; Maia=chip_or_product",
    ),
    (
        "OpenAI wants to cut its reliance on NVIDIA by co-designing a processor with Broadcom.",
        "OpenAI=company:buyer; NVIDIA=company:displaced_vendor; Broadcom=company",
    ),
    (
        "Anthropic moved a large share of its training from NVIDIA H100s to Google TPUs.",
        "Anthropic=company:buyer; NVIDIA=company:displaced_vendor; Hopper=chip_or_product; Google=company; "
        "TPU=chip_or_product",
    ),
    (
        "Amazon says Trainium lets customers train models instead of NVIDIA hardware at lower cost.",
        "Amazon=company:buyer; Trainium=chip_or_product; NVIDIA=company:displaced_vendor",
    ),
    (
        "ByteDance is weaning itself off Nvidia after the latest export rules.",
        "ByteDance=company:buyer; NVIDIA=company:displaced_vendor",
    ),
    (
        "Apple replaced Intel processors with its own silicon years ago.",
        "Apple=company:buyer; Intel=company:displaced_vendor",
    ),
    (
        "Alibaba is reducing its dependence on Nvidia and AMD as domestic chips improve.",
        "Alibaba=company:buyer; NVIDIA=company:displaced_vendor; AMD=company:displaced_vendor",
    ),
    (
        "OpenAI shifted some inference capacity from Microsoft Azure to Oracle.",
        "OpenAI=company:buyer; Microsoft=company:displaced_vendor; Oracle=company",
    ),
    (
        "Nvidia is being replaced at several hyperscalers by custom accelerators.",
        "NVIDIA=company:displaced_vendor",
    ),
    (
        "Broadcom loses Apple as a modem customer once the in-house part ships.",
        "Broadcom=company:displaced_vendor; Apple=company:buyer",
    ),
    (
        "DeepSeek trained its latest model on Huawei Ascend hardware rather than NVIDIA parts.",
        "DeepSeek=company:buyer; Huawei=company; Ascend=chip_or_product; NVIDIA=company:displaced_vendor",
    ),
    (
        "Chinese labs are ditching CUDA for homegrown software stacks.",
        "CUDA=chip_or_product; NVIDIA=company:displaced_vendor",
    ),
    (
        "Tencent plans to diversify away from Nvidia over the next two years.",
        "Tencent=company:buyer; NVIDIA=company:displaced_vendor",
    ),
    (
        "Zuckerberg said Meta would break free from third-party accelerators.",
        "Mark Zuckerberg=person; Meta=company",
    ),
    # decoupling: building its own
    (
        "Google unveiled Ironwood, its own seventh-generation TPU for inference.",
        "Google=company:buyer; TPU=chip_or_product",
    ),
    (
        "Amazon Web Services will deploy its in-house Trainium chips in Project Rainier.",
        "Amazon=company:buyer; Trainium=chip_or_product",
    ),
    (
        "Microsoft is designing custom silicon for Azure data centres.",
        "Microsoft=company:buyer",
    ),
    (
        "OpenAI plans its own data centers under the Stargate banner with SoftBank.",
        "OpenAI=company:buyer; Stargate=company; SoftBank=company",
    ),
    (
        "Saudi Arabia's Humain is building its own AI data centres near Riyadh.",
        "Saudi Arabia=country; Humain=company:buyer",
    ),
    (
        "France wants sovereign compute and its own foundation models, Emmanuel Macron said.",
        "France=country:buyer; Emmanuel Macron=person",
    ),
    (
        "India's IndiaAI Mission is funding homegrown language models from Sarvam AI.",
        "India=country; IndiaAI Mission=government_body:buyer; Sarvam AI=company",
    ),
    (
        "The European Commission wants Europe to lower its dependence on US cloud providers.",
        "European Commission=government_body:buyer; United States=country:displaced_vendor",
    ),
    # exclusivity
    (
        "Azure remains the exclusive cloud for OpenAI's API.",
        "Microsoft=company:party; OpenAI=company:party",
    ),
    (
        "Anthropic signed an exclusive agreement making AWS its primary training partner.",
        "Anthropic=company:party; Amazon=company:party",
    ),
    (
        "Oracle will be the sole cloud provider for the Stargate site in Texas.",
        "Oracle=company:party; Stargate=company:party; OpenAI=company",
    ),
    (
        "G42 and Microsoft struck an exclusive partnership backed by the UAE.",
        "G42=company:party; Microsoft=company:party; United Arab Emirates=country:party",
    ),
    (
        "CoreWeave gets exclusive early access to Blackwell systems from NVIDIA.",
        "CoreWeave=company:party; Blackwell=chip_or_product; NVIDIA=company:party",
    ),
    (
        "Mistral AI signed a non-exclusive distribution deal with Microsoft.",
        "Mistral AI=company; Microsoft=company",
    ),
    (
        "The exclusivity clause between Microsoft and OpenAI ends next year.",
        "Microsoft=company:party; OpenAI=company:party",
    ),
    (
        "Claude is available exclusively through Bedrock on Amazon's cloud.",
        "Claude=chip_or_product; Anthropic=company:party; Amazon=company:party",
    ),
    # sovereign AI: states and funds, no role
    (
        "PIF launched Humain to anchor Saudi Arabia's AI ambitions.",
        "PIF=fund; Humain=company; Saudi Arabia=country",
    ),
    (
        "MGX, the Abu Dhabi investment vehicle, joined the Stargate consortium.",
        "MGX=fund; United Arab Emirates=country; Stargate=company; OpenAI=company",
    ),
    (
        "Japan's METI subsidises Sakura Internet to build GPU clusters.",
        "Japan=country; METI=government_body; Sakura Internet=company",
    ),
    (
        "The UK announced a national compute programme with Nscale.",
        "United Kingdom=country; Nscale=company",
    ),
    (
        "EuroHPC selected new AI factories across the European Union.",
        "EuroHPC=government_body; European Union=government_body",
    ),
    (
        "Mubadala and the Qatar Investment Authority co-led the round.",
        "Mubadala=fund; Qatar Investment Authority=fund",
    ),
    (
        "Bpifrance will back data centre projects with the European Investment Bank.",
        "Bpifrance=fund; European Investment Bank=fund",
    ),
    (
        "The Pentagon awarded cloud contracts to Oracle and Google.",
        "Pentagon=government_body; Oracle=company; Google=company",
    ),
    (
        "The Commerce Department tightened export rules on H20 sales to China.",
        "US Department of Commerce=government_body; Hopper=chip_or_product; NVIDIA=company; China=country",
    ),
    # no role: plain business news
    (
        "NVIDIA reported record data centre revenue as Blackwell ramps.",
        "NVIDIA=company; Blackwell=chip_or_product",
    ),
    (
        "Jensen Huang said demand for Rubin is strong.",
        "Jensen Huang=person; NVIDIA=company; Rubin=chip_or_product",
    ),
    (
        "Meta signed a multiyear deal to rent capacity from CoreWeave.",
        "Meta=company; CoreWeave=company",
    ),
    (
        "Microsoft increased its reliance on NVIDIA for the new cluster.",
        "Microsoft=company; NVIDIA=company",
    ),
    (
        "Lisa Su showed the MI450 at AMD's event.",
        "Lisa Su=person; AMD=company; AMD Instinct=chip_or_product",
    ),
    (
        "Revenue from Microsoft grew faster than expected at OpenAI.",
        "Microsoft=company; OpenAI=company",
    ),
    (
        "Microsoft reported its own earnings on Tuesday.",
        "Microsoft=company",
    ),
    (
        "Google and Anthropic expanded their partnership. Anthropic will move workloads off AWS. "
        "Amazon declined to comment.",
        "Google=company; Anthropic=company:buyer; Amazon=company:displaced_vendor",
    ),
    (
        "Sam Altman met Masayoshi Son in Tokyo to discuss chips.",
        "Sam Altman=person; OpenAI=company; Masayoshi Son=person; SoftBank=company",
    ),
    (
        "Oracle's OCI won new business from xAI for Grok training.",
        "Oracle=company; xAI=company; Grok=chip_or_product",
    ),
)

HELD_OUT: tuple[tuple[str, str], ...] = (
    # Written after the patterns were settled and measured once, without changing the patterns for them.
    (
        "Meta is replacing Nvidia GPUs with MTIA for ranking workloads.",
        "Meta=company:buyer; NVIDIA=company:displaced_vendor; MTIA=chip_or_product",
    ),
    (
        "Humain will use AMD Instinct accelerators instead of relying only on NVIDIA.",
        "Humain=company:buyer; AMD=company; AMD Instinct=chip_or_product; NVIDIA=company:displaced_vendor",
    ),
    (
        "OpenAI is developing custom chips with Broadcom and TSMC.",
        "OpenAI=company:buyer; Broadcom=company; TSMC=company",
    ),
    (
        "The UAE's G42 dropped Huawei equipment under pressure from the White House.",
        "United Arab Emirates=country; G42=company:buyer; Huawei=company:displaced_vendor; White House=government_body",
    ),
    (
        "xAI is migrating Grok training from Oracle to its own Colossus cluster.",
        "xAI=company:buyer; Grok=chip_or_product; Oracle=company:displaced_vendor",
    ),
    (
        "Microsoft no longer holds exclusive rights to host OpenAI models.",
        "Microsoft=company:party; OpenAI=company:party",
    ),
    (
        "Nebius became the exclusive GPU cloud partner of Mistral AI in France.",
        "Nebius=company:party; Mistral AI=company:party; France=country:party",
    ),
    (
        "AWS announced that Anthropic will train on Trainium chips.",
        "Amazon=company; Anthropic=company; Trainium=chip_or_product",
    ),
    (
        "India plans to build homegrown GPUs within five years, MeitY said.",
        "India=country:buyer; MeitY=government_body",
    ),
    (
        "PIF and MGX invested in the new Stargate campus.",
        "PIF=fund; MGX=fund; Stargate=company; OpenAI=company",
    ),
    (
        "Google is selling TPUs to Meta, a blow to NVIDIA.",
        "Google=company; TPU=chip_or_product; Meta=company; NVIDIA=company",
    ),
    (
        "Amazon cut ties with Nvidia for its next training cluster, according to two people.",
        "Amazon=company:buyer; NVIDIA=company:displaced_vendor",
    ),
    (
        "Japan's SoftBank and OpenAI formed an exclusive joint venture for enterprise AI in Japan.",
        "Japan=country:party; SoftBank=company:party; OpenAI=company:party",
    ),
    (
        "The European Commission pledged funds for EuroHPC's AI gigafactories.",
        "European Commission=government_body; EuroHPC=government_body",
    ),
    (
        "Satya Nadella said Azure capacity remains tight.",
        "Satya Nadella=person; Microsoft=company",
    ),
    (
        "Oracle is reportedly losing OpenAI business to CoreWeave.",
        "Oracle=company:displaced_vendor; OpenAI=company:buyer; CoreWeave=company",
    ),
)

HELD_OUT_2: tuple[tuple[str, str], ...] = (
    # Written after the patterns were adjusted to the demo timeline's wording, and measured once.
    (
        "ByteDance is developing custom AI processors with Broadcom to lessen its dependence on Nvidia.",
        "ByteDance=company:buyer; Broadcom=company; NVIDIA=company:displaced_vendor",
    ),
    (
        "Broadcom is building custom accelerators for Meta and OpenAI.",
        "Broadcom=company; Meta=company:buyer; OpenAI=company:buyer",
    ),
    (
        "Microsoft, which owns a stake in OpenAI, is shifting inference away from Nvidia hardware.",
        "Microsoft=company:buyer; OpenAI=company; NVIDIA=company:displaced_vendor",
    ),
    (
        "Qatar's sovereign fund, the Qatar Investment Authority, backed Anthropic's latest round.",
        "Qatar=country; Qatar Investment Authority=fund; Anthropic=company",
    ),
    (
        "Tencent swapped out Nvidia chips for its own accelerators in two data centres.",
        "Tencent=company:buyer; NVIDIA=company:displaced_vendor",
    ),
    (
        "Under the agreement, Oracle becomes the exclusive provider of compute for TikTok's US operations.",
        "Oracle=company:party; United States=country:party",
    ),
    (
        "Lisa Su said Oracle will deploy 50,000 MI450 GPUs next year.",
        "Lisa Su=person; AMD=company; Oracle=company; AMD Instinct=chip_or_product",
    ),
    (
        "Apple and Google are designing their own server chips to replace Intel parts.",
        "Apple=company:buyer; Google=company:buyer; Intel=company:displaced_vendor",
    ),
    (
        "Nvidia was dropped by a large Chinese cloud in favour of Huawei's Ascend chips.",
        "NVIDIA=company:displaced_vendor; Huawei=company; Ascend=chip_or_product",
    ),
    (
        "The deal makes Google Cloud the sole compute partner for Safe Superintelligence.",
        "Google=company:party",
    ),
    (
        "Germany and France agreed to fund a European AI gigafactory with the EIB.",
        "Germany=country; France=country; European Investment Bank=fund",
    ),
    (
        "CoreWeave bought Core Scientific to own more of its data center capacity.",
        "CoreWeave=company",
    ),
    (
        "Amazon wants Anthropic to run on Trainium rather than on Google's TPUs.",
        "Amazon=company:buyer; Anthropic=company; Trainium=chip_or_product; Google=company:displaced_vendor; "
        "TPU=chip_or_product",
    ),
    (
        "Sam Altman said OpenAI would stop relying solely on Microsoft for compute.",
        "Sam Altman=person; OpenAI=company:buyer; Microsoft=company:displaced_vendor",
    ),
    (
        "The White House cleared Nvidia to sell H200 chips to approved customers in the UAE.",
        "White House=government_body; NVIDIA=company; Hopper=chip_or_product; United Arab Emirates=country",
    ),
    (
        "Mistral AI trains on its own cluster in France instead of renting from US clouds.",
        "Mistral AI=company:buyer; France=country; United States=country:displaced_vendor",
    ),
)
